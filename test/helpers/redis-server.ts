import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import Redis from 'ioredis';
import { type ExitStatus, exitOf, isRunning, releasePath, trackChild, trackPath } from './child-reaper';
import { OutputLog } from './output-log';
import { freePort } from './ports';
import { delay } from './wait';

export type { ExitStatus } from './child-reaper';

/** The port of the shared Redis on this machine, which tests must never touch. */
const SHARED_REDIS_PORT = 6379;

/** The PEM files of a server that speaks only TLS (see {@link RedisServerOptions.tls}). */
export interface RedisTlsFiles {
  /** The server's certificate (`--tls-cert-file`); it must name 127.0.0.1, which clients connect to. */
  certFile: string;
  /** The certificate's private key (`--tls-key-file`). */
  keyFile: string;
  /** The CA that signed the certificate (`--tls-ca-cert-file`); the readiness probe trusts only it. */
  caFile: string;
}

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
  /**
   * Serve TLS only: `port` is the TLS port, the plaintext listener is off (`--port 0`), clients need
   * no certificate of their own, and `url` is `rediss://`. Default: plaintext only.
   */
  tls?: RedisTlsFiles;
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
 * With `tls`, it speaks only TLS on that port; its clients must trust the CA that signed its certificate.
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
  private readonly tls: RedisTlsFiles | undefined;
  /** The CA the readiness probe trusts, read once by `start()`; undefined for a plaintext server. */
  private readonly ca: Buffer | undefined;
  private readonly output = new OutputLog(2_000);
  private dir: string | undefined;
  private running: Running | undefined;
  private lastExit: ExitStatus | undefined;

  private constructor(port: number, options: RedisServerOptions, ca: Buffer | undefined) {
    this.port = port;
    this.tls = options.tls;
    this.ca = ca;
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
    const ca = options.tls && (await fs.promises.readFile(options.tls.caFile));
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? (await freePort());
      if (port === SHARED_REDIS_PORT) {
        throw new Error(`refusing to start redis-server on port ${SHARED_REDIS_PORT}: it belongs to the shared Redis`);
      }
      const server = new RedisServerProcess(port, options, ca);
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

  /** `redis://127.0.0.1:<port>`, or `rediss://127.0.0.1:<port>` for a TLS server. */
  get url(): string {
    return `${this.tls ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`;
  }

  /** A new client of the test's own (the caller disconnects it). */
  client(): Redis {
    const client = new Redis(this.url, { maxRetriesPerRequest: null });
    client.on('error', () => undefined);
    return client;
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
    const listen = this.tls
      ? [
          '--port',
          '0',
          '--tls-port',
          String(this.port),
          '--tls-cert-file',
          this.tls.certFile,
          '--tls-key-file',
          this.tls.keyFile,
          '--tls-ca-cert-file',
          this.tls.caFile,
          '--tls-auth-clients',
          'no',
        ]
      : ['--port', String(this.port)];
    const args = [
      ...listen,
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

    // A TLS server that never answers usually has a certificate problem: the probe's error says which.
    let probeError: string | undefined;
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
      const probe = await probeRedis(this.port, this.ca);
      if (child.pid !== undefined && probe.pid === child.pid) return 'ready';
      probeError = probe.error ?? probeError;
      if (Date.now() >= deadline) {
        child.kill('SIGKILL');
        await running.exited;
        const lastProbe = probeError === undefined ? '' : ` (last probe: ${probeError})`;
        throw new Error(`redis-server on port ${this.port} did not answer in time${lastProbe}:\n${this.output.tail()}`);
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

/** What {@link probeRedis} found: the server's pid once it answers, else why not (if it knows). */
interface ProbeResult {
  pid?: number;
  /** The socket's error, e.g. a TLS handshake failure; absent for a refused connection or a timeout. */
  error?: string;
}

/**
 * Asks whatever listens on 127.0.0.1:`port` for `INFO server` and returns the `process_id` it reports;
 * no pid if nothing answers like a ready Redis within `timeoutMs`. Speaks TLS, trusting only `ca`,
 * when `ca` is given, and plaintext over a raw socket otherwise.
 */
function probeRedis(port: number, ca: Buffer | undefined, timeoutMs = 500): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = ca ? tls.connect({ host: '127.0.0.1', port, ca }) : net.connect({ host: '127.0.0.1', port });
    let received = '';
    const finish = (result: ProbeResult): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => finish({}));
    // A server still starting refuses connections; only other errors say something about the server.
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish(error.code === 'ECONNREFUSED' ? {} : { error: error.message }),
    );
    socket.once('close', () => finish({}));
    socket.once(ca ? 'secureConnect' : 'connect', () => socket.write('*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n'));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
      // An error reply (e.g. -LOADING) means not ready yet.
      if (received.startsWith('-')) return finish({});
      const match = /\r\nprocess_id:(\d+)\r\n/.exec(received);
      if (match?.[1] !== undefined) finish({ pid: Number(match[1]) });
    });
  });
}
