import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadGatewayConfig } from './gateway-config';

/**
 * The docs show what `openclaw gateway start` prints for bad configuration. Each such example is run
 * through the real parser here, so an example whose text has gone stale fails this test.
 */
const DOCS = join(__dirname, '../../../../docs');

interface Example {
  file: string;
  env: Record<string, string>;
  flags: Record<string, string>;
  printed: string[];
}

function examples(): Example[] {
  const out: Example[] = [];
  for (const file of readdirSync(DOCS).filter((f) => f.endsWith('.md'))) {
    const lines = readFileSync(join(DOCS, file), 'utf8').split('\n');
    lines.forEach((line, i) => {
      const command = /^\$ (.*)npx openclaw gateway start(.*)$/.exec(line);
      if (!command || lines[i + 1] !== 'openclaw gateway: invalid configuration:') return;
      const env = Object.fromEntries(
        (command[1] ?? '')
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map((pair) => pair.split('=', 2) as [string, string]),
      );
      const words = (command[2] ?? '').trim().split(/\s+/).filter(Boolean);
      const flags: Record<string, string> = {};
      for (let w = 0; w < words.length; w += 2) flags[words[w]!.replace(/^--/, '')] = words[w + 1] ?? '';
      const printed: string[] = [];
      for (let j = i + 2; j < lines.length && lines[j]!.startsWith('  '); j++) printed.push(lines[j]!.trim());
      out.push({ file, env, flags, printed });
    });
  }
  return out;
}

describe('configuration errors shown in docs/', () => {
  const found = examples();

  it('finds the examples', () => {
    expect(found.map((e) => e.file).sort()).toEqual(expect.arrayContaining(['configuration.md', 'security.md']));
  });

  it.each(found.map((e) => [`${e.file}: ${JSON.stringify({ ...e.env, ...e.flags })}`, e] as const))(
    'prints what %s shows',
    (_name, example) => {
      let message = '';
      try {
        loadGatewayConfig({ env: example.env, flags: example.flags });
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        message = error.message;
      }
      expect(
        message
          .split('\n')
          .slice(1)
          .map((l) => l.trim()),
      ).toEqual(example.printed);
    },
  );
});
