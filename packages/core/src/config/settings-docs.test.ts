import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GATEWAY_SETTINGS, type Setting, WORKER_SETTINGS } from './settings';
import { TIMINGS } from './timings';

/** docs/configuration.md promises a row for every setting; this keeps the promise as settings change. */
const DOC_PATH = join(__dirname, '../../../../docs/configuration.md');

/** Variables the CLI reads itself; documented on the same page but not gateway settings. */
const CLI_ONLY_ENV = ['OPENCLAW_URL', 'OPENCLAW_API_KEY'];

const doc = readFileSync(DOC_PATH, 'utf8');
const tableRows = doc.split('\n').filter((line) => line.startsWith('|'));
const settings = [...Object.entries(GATEWAY_SETTINGS), ...Object.entries(WORKER_SETTINGS)] as [
  string,
  Setting<unknown>,
][];

/** The table row that documents an environment variable (its first cell). */
function rowOf(env: string): string | undefined {
  return tableRows.find((line) => line.startsWith(`| \`${env}\` |`));
}

describe('docs/configuration.md', () => {
  it.each(settings)('has a row for %s with its environment variable and flag', (_key, setting) => {
    const row = rowOf(setting.env);
    expect(row).toBeDefined();
    if (setting.flag !== undefined) expect(row).toContain(`\`--${setting.flag}\``);
  });

  it.each(settings.filter(([, s]) => typeof s.default === 'string' && s.default !== ''))(
    'shows the default of %s as declared',
    (_key, setting) => {
      expect(rowOf(setting.env)).toContain(`\`${setting.default as string}\``);
    },
  );

  it('documents the CLI-only variables', () => {
    for (const env of CLI_ONLY_ENV) expect(rowOf(env)).toBeDefined();
  });

  it('names no variable that is neither a setting nor read by the CLI', () => {
    const known = new Set([...settings.map(([, s]) => s.env), ...CLI_ONLY_ENV]);
    const named = new Set(doc.match(/\bOPENCLAW_[A-Z0-9_]+\b/g) ?? []);
    expect([...named].filter((env) => !known.has(env))).toEqual([]);
  });

  it.each(Object.entries(TIMINGS))('lists the fixed timing %s with its value', (key, ms) => {
    expect(rowOf(key)).toMatch(new RegExp(`^\\| \`${key}\` \\| ${ms} \\| \\S`));
  });

  it('lists no fixed timing that does not exist', () => {
    const section = doc.slice(
      doc.indexOf('## Fixed timings'),
      doc.indexOf('\n## ', doc.indexOf('## Fixed timings') + 1),
    );
    const listed = [...section.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(Object.keys(TIMINGS).sort());
  });
});
