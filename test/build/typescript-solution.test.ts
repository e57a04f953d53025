import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/** A tsconfig file's JSON (the solution file may start with a comment line). */
function tsconfig(file: string): { compilerOptions?: Record<string, unknown>; references?: { path: string }[] } {
  const text = readFileSync(path.join(ROOT, file), 'utf8')
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('//'))
    .join('\n');
  return JSON.parse(text);
}

/** The solution `tsconfig.json`: `tsc -b` builds every package, in dependency order. */
describe('the TypeScript solution', () => {
  const solution = tsconfig('tsconfig.json');
  const workspaces = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] })
    .workspaces;

  it('references a composite project of every workspace package', () => {
    const referenced = (solution.references ?? []).map((r) => path.dirname(r.path));
    expect(referenced.sort()).toEqual([...workspaces].sort());
    for (const reference of solution.references ?? []) {
      expect([reference.path, tsconfig(reference.path).compilerOptions?.composite]).toEqual([reference.path, true]);
    }
  });

  it('builds everything with tsc -b', () => {
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const run = spawnSync(process.execPath, [tsc, '-b'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect({ status: run.status, output: `${run.stdout}${run.stderr}` }).toEqual({ status: 0, output: '' });
  }, 150_000);
});
