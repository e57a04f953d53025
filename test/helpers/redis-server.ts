import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type ExitStatus, exitOf, isRunning, releasePath, trackChild, trackPath } from './child-reaper';
import { OutputLog } from './output-log';
import { freePort } from './ports';
import { delay } from './wait';

export type { ExitStatus } from './child-reaper';

/** The port of the shared Redis on this machine, which tests must never touch. */
const SHARED_REDIS_PORT = 6379;

/** Options for {@link RedisServerProcess.start}. */
export interface RedisServerOptions {
  /** The `redis-server` executable. Default `redis-server`, looked up on `PATH`. */
  binary?: string;
  /** Port to listen on. Default: a free port; never 6379, which belongs to a shared Redis. */
  port?: number;
  /**
   * Extra `redis-server` arguments, placed after the harness's own so that they win
   * (e.g. `['--appendonly', 'yes']` for a test of durability across `kill()` and `restart()`).
   */
  args?: readonly string[];
  /** How long `start()` and `restart()` may take, in milliseconds. Default 10 000. */
  startTimeoutMs?: number;
}

interface Running {
  child: ChildProcess;
  exited: Promise<ExitStatus>;
}

type LaunchOutcome = 'ready' | 'port-busy';

/**
 * A real `redis-server` child process on a free port of 127.0.0.1, with no persistence, that a test
 * can stop, kill and restart on the same port.
 *
 * Every server has its own data directory, kept across `kill()` and `restart()` (so a test that
 * enables AOF through `args` sees what survives a crash) and removed by `stop()`. A server a test
 * forgets to stop is killed when the test process exits, and reported as a leak.
 *
 * @example
 * ```ts
 * const redis = await RedisServerProcess.start();
 * const client = new Redis(redis.url);
 * await redis.kill();
 * await redis.restart();
 * await redis.stop();
 * ```
 */
export class RedisServerProcess {
  /** Port the server listens on; `restart()` keeps it. */
  readonly port: number;
  private readonly binary: string;
  private readonly extraArgs: readonly string[];
  private readonly startTimeoutMs: number;
  private readonly output = new OutputLog(2_000);
  private dir: string | undefined;
  private running: Running | undefined;
  private lastExit: ExitStatus | undefined;

  private constructor(port: number, options: RedisServerOptions) {
    this.port = port;
    this.binary = options.binary ?? 'redis-server';
    this.extraArgs = options.args ?? [];
    this.startTimeoutMs = options.startTimeoutMs ?? 10_000;
  }

  /**
   * Spawns a server and resolves once it answers on its port. Picks another free port if the chosen
   * one is taken in the meantime (unless `options.port` fixes it).
   */
  static async start(options: RedisServerOptions = {}): Promise<RedisServerProcess> {
    const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? (await freePort());
      if (port === SHARED_REDIS_PORT) {
        throw new Error(`refusing to start redis-server on port ${SHARED_REDIS_PORT}: it belongs to the shared Redis`);
      }
      const server = new RedisServerProcess(port, options);
      let outcome: LaunchOutcome;
      try {
        outcome = await server.launch(deadline);
      } finally {
        if (!server.isRunning) await server.releaseDir();
      }
      if (outcome === 'ready') return server;
      if (Date.now() >= deadline) {
        throw new Error(`redis-server could not bind a free port after ${attempt} attempts`);
      }
      // A fixed port may be held for a moment longer; a picked one was simply lost in a race.
      if (options.port !== undefined) await delay(100);
    }
  }

  /** `redis://127.0.0.1:<port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Process id of the running server, or `undefined` while it is down. */
  get pid(): number | undefined {
    return this.running?.child.pid;
  }

  /** True from a successful `start()` or `restart()` until the server exits. */
  get isRunning(): boolean {
    return this.running !== undefined && isRunning(this.running.child);
  }

  /** The server's recent output (its log), for diagnosing a failing test. */
  logs(): string {
    return this.output.text();
  }

  /**
   * Shuts the server down with SIGTERM (SIGKILL if it is still up after 5 s), waits for it to exit
   * and removes its data directory. Safe to call more than once.
   */
  async stop(): Promise<ExitStatus> {
    const status = await this.signal('SIGTERM');
    await this.releaseDir();
    return status;
  }

  /** Kills the server with SIGKILL, as a crash would, and waits for it to exit. Keeps its data directory. */
  kill(): Promise<ExitStatus> {
    return this.signal('SIGKILL');
  }

  /**
   * Starts the server again on the same port and resolves once it answers; shuts down the running
   * one first (SIGTERM) if there is one. Retries while the port is still busy, up to the start timeout.
   */
  async restart(): Promise<void> {
    await this.signal('SIGTERM');
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if ((await this.launch(deadline)) === 'ready') return;
      if (Date.now() >= deadline) {
        throw new Error(`redis-server could not bind port ${this.port} again within ${this.startTimeoutMs} ms`);
      }
      await delay(100);
    }
  }

  private async signal(signal: NodeJS.Signals): Promise<ExitStatus> {
    const running = this.running;
    if (!running) return this.lastExit ?? { code: null, signal: null };
    if (isRunning(running.child)) running.child.kill(signal);
    let escalation: NodeJS.Timeout | undefined;
    if (signal !== 'SIGKILL') {
      escalation = setTimeout(() => running.child.kill('SIGKILL'), 5_000);
    }
    try {
      return await running.exited;
    } finally {
      clearTimeout(escalation);
    }
  }

  /** Spawns one server on `this.port` and waits until it is the one answering there. */
  private async launch(deadline: number): Promise<LaunchOutcome> {
    if (this.dir === undefined) {
      this.dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'openclaw-redis-'));
      trackPath(this.dir);
    }
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      this.dir,
      '--daemonize',
      'no',
      ...this.extraArgs,
    ];
    const child = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let spawnError: Error | undefined;
    child.once('error', (error) => {
      spawnError = error;
    });
    trackChild(child, `redis-server on port ${this.port}`);
    this.output.follow(child.stdout);
    this.output.follow(child.stderr);
    const running: Running = { child, exited: exitOf(child) };
    let exit: ExitStatus | undefined;
    void running.exited.then((status) => {
      exit = status;
      this.lastExit = status;
      if (this.running === running) this.running = undefined;
    });
    this.running = running;

    for (;;) {
      if (spawnError) {
        await running.exited;
        throw new Error(`could not run ${this.binary}: ${spawnError.message}`);
      }
      if (exit) {
        if (/address already in use/i.test(this.output.tail(20))) return 'port-busy';
        throw new Error(
          `redis-server on port ${this.port} exited (code ${exit.code}, signal ${exit.signal}) before it was ready:\n` +
            this.output.tail(),
        );
      }
      // Check the pid, not just PONG: if another process took the port, its answer must not count.
      if (child.pid !== undefined && (await redisPid(this.port)) === child.pid) return 'ready';
      if (Date.now() >= deadline) {
        child.kill('SIGKILL');
        await running.exited;
        throw new Error(`redis-server on port ${this.port} did not answer in time:\n${this.output.tail()}`);
      }
      await delay(25);
    }
  }

  private async releaseDir(): Promise<void> {
    if (this.dir === undefined) return;
    const dir = this.dir;
    this.dir = undefined;
    await releasePath(dir);
  }
}

/**
 * Asks whatever listens on 127.0.0.1:`port` for `INFO server` over a raw socket and returns the
 * `process_id` it reports, or `undefined` if nothing answers like a ready Redis within `timeoutMs`.
 */
function redisPid(port: number, timeoutMs = 500): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    const finish = (pid: number | undefined): void => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(timeoutMs, () => finish(undefined));
    socket.once('error', () => finish(undefined));
    socket.once('close', () => finish(undefined));
    socket.once('connect', () => socket.write('*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n'));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
      // An error reply (e.g. -LOADING) means not ready yet.
      if (received.startsWith('-')) return finish(undefined);
      const match = /\r\nprocess_id:(\d+)\r\n/.exec(received);
      if (match?.[1] !== undefined) finish(Number(match[1]));
    });
  });
}
