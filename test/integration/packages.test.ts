import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { exitOf, trackChild } from '../helpers/child-reaper';
import { freePort } from '../helpers/ports';
import { RedisServerProcess } from '../helpers/redis-server';
import { waitFor, withTimeout } from '../helpers/wait';

const REPO = path.resolve(__dirname, '..', '..');
const PACKAGES = ['protocol', 'sdk', 'core', 'gateway', 'worker', 'dashboard', 'cli'];
const exec = promisify(execFile);

/** Runs a command in a folder; its output, or a failure naming it with everything it printed. */
async function sh(cwd: string, file: string, args: string[], timeoutMs = 60_000): Promise<string> {
  // The test runs under `npm test`: the child npm must not think it runs a script of this checkout.
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^npm_(package_|lifecycle_|config_local_prefix|command|execpath|node_execpath)/.test(k),
    ),
  );
  const started = Date.now();
  try {
    const { stdout } = await exec(file, args, { cwd, env: clean, maxBuffer: 16 * 1024 * 1024, timeout: timeoutMs });
    return stdout;
  } catch (error) {
    const { stdout, stderr, signal } = error as { stdout?: string; stderr?: string; signal?: string };
    throw new Error(
      `${path.basename(file)} ${args.join(' ')} failed after ${Date.now() - started} ms${signal ? ` (${signal})` : ''}:\n${stdout ?? ''}${stderr ?? ''}`,
    );
  }
}

function start(cwd: string, file: string, args: string[], env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(file, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child, `${path.basename(file)} ${args.join(' ')}`);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  return { child, output: () => output, exited: exitOf(child) };
}

/**
 * The packages as npm would publish them (`npm pack`), installed into an empty project outside the
 * checkout: the CLI starts a gateway from there, and the README's example agent and caller, copied
 * there, talk through it with the SDK. A missing file, a deep import or an `exports` gap fails here.
 */
describe('the packages outside the repository', () => {
  let dir: string;
  let redis: RedisServerProcess;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'openclaw-outside-'));
    const packs = path.join(dir, 'packs');
    mkdirSync(packs);
    mkdirSync(path.join(dir, 'project'));
    // The packages as built by the test command (npm pack runs no build of its own here).
    await sh(REPO, 'npm', [
      'pack',
      '--silent',
      '--pack-destination',
      packs,
      ...PACKAGES.flatMap((p) => ['-w', `@openclaw/${p}`]),
    ]);
    redis = await RedisServerProcess.start();
  }, 120_000);

  afterAll(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs from the packed tarballs, and the CLI, the SDK and its types work there', async () => {
    const packs = path.join(dir, 'packs');
    const project = path.join(dir, 'project');
    const tarballs = readdirSync(packs).filter((f) => f.endsWith('.tgz'));
    expect(tarballs.sort()).toEqual(PACKAGES.map((p) => `openclaw-${p}-0.1.0.tgz`).sort());
    writeFileSync(path.join(project, 'package.json'), '{"name":"outside","private":true,"type":"module"}\n');
    await sh(
      project,
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        ...tarballs.map((t) => path.join(packs, t)),
      ],
      150_000,
    );
    const bin = path.join(project, 'node_modules', '.bin', 'openclaw');
    expect((await sh(project, bin, ['--version'])).trim()).toBe('0.1.0');

    // The SDK's types resolve through its exports map, for a TypeScript project of its own.
    writeFileSync(
      path.join(project, 'check.ts'),
      [
        "import { connect, GatewayError, type GatewayClient } from '@openclaw/sdk';",
        "const client: GatewayClient = await connect({ url: 'ws://127.0.0.1:1' });",
        "const output: number = await client.call<number>('a', 't', {});",
        'export { GatewayError, output };',
        '',
      ].join('\n'),
    );
    await sh(project, process.execPath, [
      path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'),
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--target',
      'es2022',
      '--types',
      'node',
      '--typeRoots',
      path.join(REPO, 'node_modules', '@types'),
      'check.ts',
    ]);

    // A gateway from the installed CLI, and the example agent and caller beside it.
    const port = await freePort();
    const gateway = start(project, bin, ['gateway', 'start', '--auth', 'none', '--port', String(port)], {
      REDIS_URL: redis.url,
      OPENCLAW_KEY_PREFIX: 'outside',
      OPENCLAW_LOG_FORMAT: 'json',
    });
    let agent: ReturnType<typeof start> | undefined;
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok, {
        what: `the installed gateway to be ready (${gateway.output().slice(-500)})`,
        timeoutMs: 20_000,
      });
      for (const example of ['agent.mjs', 'caller.mjs']) {
        copyFileSync(path.join(REPO, 'examples', example), path.join(project, example));
      }
      const url = `ws://127.0.0.1:${port}`;
      agent = start(project, process.execPath, ['agent.mjs'], { OPENCLAW_URL: url });
      await waitFor(() => agent!.output().includes('my-agent is ready'), {
        what: 'the example agent to register',
        timeoutMs: 15_000,
      });
      const caller = start(project, process.execPath, ['caller.mjs'], { OPENCLAW_URL: url });
      expect((await withTimeout(caller.exited, 15_000, 'the example caller')).code).toBe(0);
      expect(caller.output()).toBe("progress { stage: 'counting' }\noutput { words: 4 }\n");
      const status = await sh(project, bin, ['gateway', 'status', '--url', `http://127.0.0.1:${port}`]);
      expect(status).toContain('my-agent');
    } finally {
      for (const child of [agent?.child, gateway.child]) child?.kill('SIGTERM');
      const killer = setTimeout(() => {
        for (const child of [agent?.child, gateway.child]) child?.kill('SIGKILL');
      }, 10_000);
      await Promise.all([agent?.exited, gateway.exited]);
      clearTimeout(killer);
    }
  }, 300_000);
});
