import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ExitStatus, exitOf, isRunning, trackChild } from './child-reaper';
import { OutputLog } from './output-log';
import { waitFor } from './wait';

export type { ExitStatus } from './child-reaper';

/** Root of the repository, from which the built CLI is run. */
const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Default CLI entry point: the built `openclaw` bin. */
const DEFAULT_CLI = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js');

/** One parsed JSON log line of the gateway (pino). */
export type LogRecord = Record<string, unknown>;

/** Options for {@link GatewayProcess}. */
export interface GatewayProcessOptions {
  /** Redis the replica uses (`--redis`), e.g. a `RedisServerProcess`'s `url`. Required: never the shared 6379. */
  redisUrl: string;
  /** `--replica-id`. Default `gw-<random hex>`. */
  replicaId?: string;
  /** `OPENCLAW_AUTH`. Default `none` (loopback test replicas): the gateway's own default, `apikey`, needs keys. */
  auth?: 'none' | 'apikey' | 'jwt';
  /** `OPENCLAW_API_KEYS`, joined with commas. */
  apiKeys?: readonly string[];
  /** `OPENCLAW_KEY_PREFIX`: give each test its own, so tests sharing a Redis cannot see each other. */
  keyPrefix?: string;
  /** Port to listen on (`--port`). Default 0: any free port. A fixed one lets a restart keep its place behind nginx. */
  port?: number;
  /** Extra command-line arguments, after the harness's own. */
  args?: readonly string[];
  /**
   * Extra environment variables; `undefined` removes one. The child inherits the test's environment
   * minus every `OPENCLAW_*` variable and `REDIS_URL`, so a developer's shell cannot change a test.
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** How long `start()` waits for the ready line, in milliseconds. Default 15 000. */
  startTimeoutMs?: number;
  /** The CLI entry point to run with `node`. Default `<repo>/packages/cli/dist/bin.js`. */
  cliPath?: string;
}

interface Started {
  child: ChildProcess;
  exited: Promise<ExitStatus>;
}

/**
 * A real gateway replica in a child process:
 * `node packages/cli/dist/bin.js gateway start --port 0 --host 127.0.0.1 --redis <url> --replica-id <id>`.
 *
 * `start()` resolves with the port from the replica's `"gateway ready"` log line. All output is kept
 * for `logs()`. A replica a test forgets to stop is killed when the test process exits, and reported
 * as a leak.
 *
 * @example
 * ```ts
 * const redis = await RedisServerProcess.start();
 * const gateway = await GatewayProcess.start({ redisUrl: redis.url, keyPrefix: 't1' });
 * const socket = await TestSocket.open(gateway.url);
 * // ...
 * await socket.close();
 * expect(await gateway.stop()).toEqual({ code: 0, signal: null });
 * await redis.stop();
 * ```
 */
export class GatewayProcess {
  /** The id this replica was started with (`--replica-id`). */
  readonly replicaId: string;
  protected readonly options: GatewayProcessOptions;
  private readonly output = new OutputLog();
  private readonly records: LogRecord[] = [];
  private started: Started | undefined;
  private readyPort: number | undefined;

  constructor(options: GatewayProcessOptions) {
    this.options = options;
    this.replicaId = options.replicaId ?? `gw-${randomBytes(4).toString('hex')}`;
  }

  /** Creates a replica and waits until it is ready. */
  static async start(options: GatewayProcessOptions): Promise<GatewayProcess> {
    const gateway = new GatewayProcess(options);
    await gateway.start();
    return gateway;
  }

  /** Port the replica listens on. Throws before `start()` has resolved. */
  get port(): number {
    if (this.readyPort === undefined) throw new Error(`gateway ${this.replicaId} is not ready yet`);
    return this.readyPort;
  }

  /** `ws://127.0.0.1:<port>` (the WebSocket endpoint is at `/`). */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** `http://127.0.0.1:<port>`, for health, readiness and metrics. */
  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Process id of the replica. Throws before `start()`. */
  get pid(): number {
    const pid = this.process().child.pid;
    if (pid === undefined) throw new Error(`gateway ${this.replicaId} has no process id (it failed to spawn)`);
    return pid;
  }

  /** Resolves when the replica has exited, with its exit code or signal. Throws before `start()`. */
  get exited(): Promise<ExitStatus> {
    return this.process().exited;
  }

  /** True from `start()` until the process exits. */
  get isRunning(): boolean {
    return this.started !== undefined && isRunning(this.started.child);
  }

  /**
   * Spawns the replica and resolves with its port once it logs `"gateway ready"`. Rejects, quoting
   * the end of its output, if it exits first or is not ready within `startTimeoutMs` (it is then
   * killed).
   */
  async start(): Promise<number> {
    if (this.started) throw new Error(`gateway ${this.replicaId} was already started`);
    const cliPath = this.options.cliPath ?? DEFAULT_CLI;
    if (!fs.existsSync(cliPath)) {
      throw new Error(`${cliPath} does not exist: build the packages first (npm run build)`);
    }
    const args = [cliPath, ...this.commandArgs(), ...(this.options.args ?? [])];
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: this.childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackChild(child, `gateway ${this.replicaId}`);
    const started: Started = { child, exited: exitOf(child) };
    this.started = started;

    const timeoutMs = this.options.startTimeoutMs ?? 15_000;
    const ready = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready within ${timeoutMs} ms`)), timeoutMs);
      const settle = (outcome: () => void): void => {
        clearTimeout(timer);
        outcome();
      };
      this.output.follow(child.stdout, (line) => {
        const record = parseRecord(line);
        if (!record) return;
        this.records.push(record);
        const port = this.readyPortOf(record);
        if (port !== undefined) settle(() => resolve(port));
      });
      this.output.follow(child.stderr);
      child.once('error', (error) => settle(() => reject(new Error(`could not run node: ${error.message}`))));
      // Resolves only after the pipes drained, so a ready line written just before exiting still wins.
      void started.exited.then(({ code, signal }) =>
        settle(() => reject(new Error(`exited (code ${code}, signal ${signal}) before it was ready`))),
      );
    });
    try {
      this.readyPort = await ready;
      return this.readyPort;
    } catch (error) {
      if (isRunning(child)) child.kill('SIGKILL');
      await started.exited;
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`gateway ${this.replicaId} ${reason}; its output ended with:\n${this.output.tail()}`);
    }
  }

  /**
   * Sends `signal` and resolves once the replica has exited, with its exit status. If it is still up
   * after `killAfterMs`, it gets SIGKILL (and the status shows it). Safe to call after it exited.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 5_000): Promise<ExitStatus> {
    const { child, exited } = this.process();
    if (!isRunning(child)) return exited;
    child.kill(signal);
    const escalation = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    try {
      return await exited;
    } finally {
      clearTimeout(escalation);
    }
  }

  /** Kills the replica with SIGKILL (a crash, `kill -9`) and resolves once it has exited. */
  kill(): Promise<ExitStatus> {
    return this.stop('SIGKILL');
  }

  /** Everything the replica wrote to stdout and stderr so far, line by line. */
  logs(): string {
    return this.output.text();
  }

  /** The replica's stdout lines that parsed as JSON log records, in order. */
  logRecords(): readonly LogRecord[] {
    return this.records;
  }

  /**
   * Resolves with the first log record (already logged or still to come) for which `predicate`
   * returns true. For diagnostics and synchronisation only: assert behaviour through the protocol.
   */
  async waitForLog(
    predicate: (record: LogRecord) => boolean,
    options: { what: string; timeoutMs?: number },
  ): Promise<LogRecord> {
    return waitFor(() => this.records.find(predicate), { intervalMs: 20, ...options });
  }

  /** The CLI arguments that start this process. */
  protected commandArgs(): string[] {
    return [
      'gateway',
      'start',
      '--port',
      String(this.options.port ?? 0),
      '--host',
      '127.0.0.1',
      '--redis',
      this.options.redisUrl,
      '--replica-id',
      this.replicaId,
    ];
  }

  /** The port announced by the ready line, if this record is it. */
  protected readyPortOf(record: LogRecord): number | undefined {
    return record.msg === 'gateway ready' && typeof record.port === 'number' ? record.port : undefined;
  }

  private process(): Started {
    if (!this.started) throw new Error(`gateway ${this.replicaId} was not started`);
    return this.started;
  }

  private childEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (name.startsWith('OPENCLAW_') || name === 'REDIS_URL') continue;
      env[name] = value;
    }
    const { auth, apiKeys, keyPrefix } = this.options;
    env.OPENCLAW_AUTH = auth ?? 'none';
    if (apiKeys !== undefined) env.OPENCLAW_API_KEYS = apiKeys.join(',');
    if (keyPrefix !== undefined) env.OPENCLAW_KEY_PREFIX = keyPrefix;
    for (const [name, value] of Object.entries(this.options.env ?? {})) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    return env;
  }
}

function parseRecord(line: string): LogRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as LogRecord) : undefined;
  } catch {
    return undefined;
  }
}
