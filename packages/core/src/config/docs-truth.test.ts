import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Phrases that once described features as missing. Each feature exists now, so a page that still says
 * so misleads its reader: this test fails on any of them, wherever it reappears.
 */
const STALE: readonly { phrase: RegExp; truth: string }[] = [
  { phrase: /\bJWT\b[^;\n]{0,120}not implemented/i, truth: 'JWT bearer tokens are implemented (OPENCLAW_AUTH=jwt)' },
  {
    phrase: /\bOAuth\b[^;\n]{0,120}not implemented/i,
    truth: 'OAuth 2.0 access tokens are accepted, introspection included',
  },
  { phrase: /per-principal permissions are not/i, truth: 'permissions come from roles and the RBAC policy' },
  { phrase: /every principal has every\s+permission/i, truth: 'only `none` gives every permission' },
  { phrase: /until the RBAC policy file\s+exists/i, truth: 'the RBAC policy exists (openclaw policy apply)' },
  { phrase: /no (RBAC|policy) (file|support) yet/i, truth: 'the RBAC policy exists' },
];

const ROOT = join(__dirname, '../../../..');
const pages = [
  join(ROOT, 'README.md'),
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(ROOT, 'docs', f)),
];

describe('docs say nothing stale about features that exist', () => {
  it.each(pages)('%s', (page) => {
    const text = readFileSync(page, 'utf8');
    const found = STALE.filter(({ phrase }) => phrase.test(text)).map(({ phrase, truth }) => `${phrase}: ${truth}`);
    expect(found).toEqual([]);
  });
});

describe("the README's five-minute examples are the files in examples/, as they ship", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  // A link line "[`examples/<file>`](examples/<file>):", a blank line, then the fenced file.
  const shown = [...readme.matchAll(/^\[`(examples\/[^`]+)`\]\(\1\):\n\n```\w+\n([\s\S]*?)\n```$/gm)];

  it('shows the agents and callers of both SDKs', () => {
    expect(shown.map((m) => m[1])).toEqual(
      expect.arrayContaining([
        'examples/agent.mjs',
        'examples/caller.mjs',
        'examples/python/agent.py',
        'examples/python/caller.py',
      ]),
    );
  });

  it.each(shown.map((m) => [m[1]!, m[2]!] as const))('%s', (file, text) => {
    expect(text).toBe(readFileSync(join(ROOT, file), 'utf8').trimEnd());
  });
});

describe('the examples the docs pages show are the files in examples/, as they ship', () => {
  // A link line "[`examples/<file>`](../examples/<file>):", a blank line, then the fenced file.
  const shown = pages
    .filter((page) => page !== join(ROOT, 'README.md'))
    .flatMap((page) => [
      ...readFileSync(page, 'utf8').matchAll(/^\[`(examples\/[^`]+)`\]\(\.\.\/\1\):\n\n```\w+\n([\s\S]*?)\n```$/gm),
    ]);

  it('shows the A2A client', () => {
    expect(shown.map((m) => m[1])).toContain('examples/a2a-client.mjs');
  });

  it.each(shown.map((m) => [m[1]!, m[2]!] as const))('%s', (file, text) => {
    expect(text).toBe(readFileSync(join(ROOT, file), 'utf8').trimEnd());
  });
});
