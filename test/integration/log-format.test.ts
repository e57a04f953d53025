import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ExitStatus, exitOf, isRunning, trackChild } from '../helpers/child-reaper';
import { GatewayProcess } from '../helpers/gateway-process';
import { RedisServerProcess } from '../helpers/redis-server';
import { withTimeout } from '../helpers/wait';

const REPO = path.resolve(__dirname, '..', '..');
const CLI = path.join(REPO, 'packages', 'cli', 'dist', 'bin.js');

/** A readable line's head: local time with milliseconds, then the level. */
const CLOCK = String.raw`\d\d:\d\d:\d\d\.\d{3}`;

/** An `openclaw` process whose stdout is piped (not a terminal) and kept. */
interface Running {
  child: ChildProcess;
  stdout(): string;
  exited: Promise<ExitStatus>;
  /** Resolves with the first match of `pattern` in stdout; rejects if the process exits first. */
  waitFor(pattern: RegExp, what: string): Promise<RegExpExecArray>;
}

function run(args: readonly string[], env: Record<string, string> = {}): Running {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('OPENCLAW_') && k !== 'REDIS_URL'),
  );
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child, `openclaw ${args.join(' ')}`);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = exitOf(child);
  return {
    child,
    stdout: () => out,
    exited,
    waitFor: (pattern, what) =>
      withTimeout(
        new Promise<RegExpExecArray>((resolve, reject) => {
          const check = (): void => {
            const m = pattern.exec(out);
            if (m) {
              child.stdout?.off('data', check);
              resolve(m);
            }
          };
          child.stdout?.on('data', check);
          check();
          void exited.then((s) => reject(new Error(`exited (${s.code}, ${s.signal}) first:\n${out}\n${err}`)));
        }),
        20_000,
        what,
      ),
  };
}

async function stop(running: Running, signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus> {
  if (isRunning(running.child)) running.child.kill(signal);
  const timer = setTimeout(() => running.child.kill('SIGKILL'), 10_000);
  try {
    return await running.exited;
  } finally {
    clearTimeout(timer);
  }
}

describe('log format', () => {
  let redis: RedisServerProcess;
  beforeAll(async () => {
    redis = await RedisServerProcess.start();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('gateway start --log-format pretty prints readable lines, the ready line with its real port', async () => {
    const gateway = run([
      'gateway',
      'start',
      '--auth',
      'none',
      '--port',
      '0',
      '--log-format',
      'pretty',
      '--redis',
      redis.url,
      '--replica-id',
      'gw-pretty',
    ]);
    try {
      const ready = await gateway.waitFor(
        new RegExp(
          `^${CLOCK} INFO gateway ready replicaId=gw-pretty port=(\\d+) host=127\\.0\\.0\\.1 version=\\S+ auth=none redis=redis://127\\.0\\.0\\.1:${redis.port}$`,
          'm',
        ),
        'the readable ready line',
      );
      expect((await fetch(`http://127.0.0.1:${ready[1]}/readyz`)).status).toBe(200);
    } finally {
      expect(await stop(gateway)).toEqual({ code: 0, signal: null });
    }
    expect(gateway.stdout()).toMatch(
      new RegExp(`^${CLOCK} INFO stopping: draining connections replicaId=gw-pretty signal=SIGTERM$`, 'm'),
    );
    expect(gateway.stdout()).toMatch(new RegExp(`^${CLOCK} INFO gateway stopped replicaId=gw-pretty$`, 'm'));
    // Not one JSON line.
    expect(
      gateway
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{')),
    ).toEqual([]);
  });

  it('gateway start writes JSON with --log-format json, over OPENCLAW_LOG_FORMAT, and when stdout is piped', async () => {
    const flagged = await GatewayProcess.start({
      redisUrl: redis.url,
      keyPrefix: `lf-${randomBytes(3).toString('hex')}`,
      args: ['--log-format', 'json'],
      env: { OPENCLAW_LOG_FORMAT: 'pretty' },
    });
    // A piped stdout is not a terminal: the default, auto, writes JSON.
    const piped = await GatewayProcess.start({
      redisUrl: redis.url,
      keyPrefix: `lf-${randomBytes(3).toString('hex')}`,
    });
    try {
      for (const gateway of [flagged, piped]) {
        const ready = gateway
          .logs()
          .split('\n')
          .find((l) => l.includes('gateway ready'));
        expect(JSON.parse(ready ?? '')).toMatchObject({
          level: 30,
          msg: 'gateway ready',
          port: gateway.port,
          replicaId: gateway.replicaId,
        });
      }
    } finally {
      await Promise.all([flagged.stop(), piped.stop()]);
    }
  });

  it('worker start and openclaw up print readable lines with --log-format pretty', async () => {
    const worker = run(['worker', 'start', '--redis', redis.url, '--port', '0', '--log-format', 'pretty'], {
      OPENCLAW_KEY_PREFIX: `lf-${randomBytes(3).toString('hex')}`,
      OPENCLAW_WORKER_ID: 'worker-pretty',
    });
    try {
      await worker.waitFor(new RegExp(`^${CLOCK} INFO worker ready workerId=worker-pretty `, 'm'), 'worker ready');
    } finally {
      expect(await stop(worker)).toEqual({ code: 0, signal: null });
    }

    const dataDir = mkdtempSync(path.join(tmpdir(), 'openclaw-up-'));
    const up = run(['up', '--port', '0', '--data-dir', dataDir, '--log-format', 'pretty']);
    try {
      await up.waitFor(
        new RegExp(`^${CLOCK} INFO gateway ready replicaId=gw-[0-9a-f]{8} port=\\d+ host=127\\.0\\.0\\.1$`, 'm'),
        'the readable gateway ready line of openclaw up',
      );
      await up.waitFor(new RegExp(`^${CLOCK} INFO worker ready workerId=worker-[0-9a-f]{8} `, 'm'), 'its worker');
      expect(
        up
          .stdout()
          .split('\n')
          .filter((l) => l.startsWith('{')),
      ).toEqual([]);
    } finally {
      expect(await stop(up, 'SIGINT')).toEqual({ code: 0, signal: null });
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('openclaw up stops cleanly on a Ctrl-C that comes while it is still starting', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'openclaw-up-'));
    const up = run(['up', '--port', '0', '--data-dir', dataDir, '--log-format', 'json']);
    try {
      // The gateway's ready line comes before the worker has started: the signal lands mid-start.
      await up.waitFor(/"msg":"gateway ready"/, 'the gateway ready line of openclaw up');
      expect(await stop(up, 'SIGINT')).toEqual({ code: 0, signal: null });
    } finally {
      if (isRunning(up.child)) up.child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
