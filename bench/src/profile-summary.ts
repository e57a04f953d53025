// Summarises a V8 CPU profile (`node --cpu-prof`): self time by function, and by package or file,
// as shares of the samples. Usage: node bench/dist/profile-summary.js <file.cpuprofile> [top]

import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

/** Where a script URL belongs: a package under node_modules, one of ours, or Node's own. */
function ownerOf(url: string): string {
  if (url === '') return '(native, GC, idle)';
  if (url.startsWith('node:')) return 'node (core)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const ours = /packages\/([^/]+)\/dist\/(.+)$/.exec(url);
  return ours ? `@openclaw/${ours[1]} ${ours[2]}` : url;
}

function main(): void {
  const [file, topArg] = process.argv.slice(2);
  if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [top]');
  const top = Number(topArg ?? 30);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map<number, number>();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const total = profile.samples.length;
  const idle = [...counts].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)');
  const busy = total - idle.reduce((sum, [, n]) => sum + n, 0);
  const byFunction = new Map<string, number>();
  const byOwner = new Map<string, number>();
  for (const [id, n] of counts) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    const owner = ownerOf(url);
    const name = `${functionName || '(anonymous)'} ${owner}${url ? `:${lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + n);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + n);
  }
  const print = (title: string, rows: Map<string, number>): void => {
    console.log(`\n${title} (share of ${busy} busy samples)`);
    for (const [name, n] of [...rows].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${((100 * n) / busy).toFixed(1).padStart(5)}%  ${name}`);
    }
  };
  console.log(`${file}: ${total} samples, ${((100 * busy) / total).toFixed(1)}% busy`);
  print('self time by package or file', byOwner);
  print('self time by function', byFunction);
}

main();
