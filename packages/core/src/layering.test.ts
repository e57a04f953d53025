import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * The layers of core, bottom first (docs/architecture.md, "Layout"). A folder may import from its
 * own folder and from folders of lower layers only; folders of one layer do not import each other.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['matching', 'errors'],
  ['config'],
  ['telemetry'],
  ['redis'],
  ['audit', 'auth', 'bus', 'registry', 'process', 'regions', 'state'],
  ['governance'],
  ['tasks'],
  ['node'],
];

/** Which packages each package may depend on (the same diagram). */
const PACKAGES: Record<string, readonly string[]> = {
  protocol: [],
  core: ['protocol'],
  sdk: ['protocol'],
  dashboard: ['protocol'],
  gateway: ['core', 'protocol', 'dashboard'],
  worker: ['core', 'protocol'],
  cli: ['core', 'gateway', 'protocol', 'worker'],
};

const SRC = __dirname;
const rank = new Map(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i] as const)));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

describe('the layers of core', () => {
  const files = sources(SRC).filter((f) => relative(SRC, f).includes('/'));

  it('places every folder in a layer', () => {
    const folders = new Set(files.map((f) => relative(SRC, f).split('/')[0]!));
    expect([...folders].filter((f) => !rank.has(f))).toEqual([]);
  });

  it('imports only from lower layers', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const folder = relative(SRC, file).split('/')[0]!;
      for (const [, target] of readFileSync(file, 'utf8').matchAll(/from '\.\.\/([a-z-]+)\//g)) {
        if (target !== folder && !((rank.get(target!) ?? Infinity) < rank.get(folder)!)) {
          wrong.push(`${relative(SRC, file)} imports ${target}/`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('the packages', () => {
  it.each(Object.entries(PACKAGES))('%s depends only on the packages below it', (name, allowed) => {
    const manifest = JSON.parse(readFileSync(join(SRC, '../../', name, 'package.json'), 'utf8'));
    const deps = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies, ...manifest.peerDependencies })
      .filter((d) => d.startsWith('@openclaw/'))
      .map((d) => d.slice('@openclaw/'.length));
    expect(deps.filter((d) => !allowed.includes(d))).toEqual([]);
    const imported = new Set(
      sources(join(SRC, '../../', name, 'src')).flatMap((file) =>
        [...readFileSync(file, 'utf8').matchAll(/from '@openclaw\/([a-z]+)/g)].map((m) => m[1]!),
      ),
    );
    expect([...imported].filter((d) => d !== name && !allowed.includes(d))).toEqual([]);
  });
});
