import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { resolve } from 'node:path';
import {
  ConfigError,
  createLogger,
  GATEWAY_SETTINGS,
  loadGatewayConfig,
  loadWorkerConfig,
  redactRedisUrl,
} from '@openclaw/core';
import { Gateway } from '@openclaw/gateway';
import { TaskWorker } from '@openclaw/worker';
import type { Command } from 'commander';

/** `openclaw up`: the whole local stack in one command. */
export function addUpCommand(program: Command): void {
  program
    .command('up')
    .description(
      'start a local stack: Redis (REDIS_URL, or a redis-server it starts under .openclaw/), a gateway and a worker',
    )
    .option('--port <port>', 'gateway port [OPENCLAW_PORT, default 18789]')
    .option('--data-dir <dir>', 'where a started redis-server keeps its data', '.openclaw')
    .option(
      '--log-format <format>',
      `${GATEWAY_SETTINGS.logFormat.doc} [OPENCLAW_LOG_FORMAT, default ${GATEWAY_SETTINGS.logFormat.default}]`,
    )
    .action(async (options: UpOptions) => {
      await up(options);
    });
}

/** Options of `openclaw up`, as commander gives them. */
interface UpOptions {
  port?: string;
  dataDir: string;
  logFormat?: string;
}

async function up(options: UpOptions): Promise<void> {
  const log = (line: string): void => void process.stderr.write(`openclaw up: ${line}\n`);
  // The signal handlers come first: the gateway and the worker log their ready lines before `start`
  // returns, and a Ctrl-C on such a line must stop the stack cleanly, not kill the process.
  const signals = new StopSignals();
  let redis: ChildProcess | undefined;
  let redisUrl = process.env.REDIS_URL;
  if (redisUrl) {
    log(`using Redis at ${redactRedisUrl(redisUrl)} (REDIS_URL)`);
  } else {
    const dir = resolve(options.dataDir, 'redis');
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    redis = await startRedis(port, dir);
    redisUrl = `redis://127.0.0.1:${port}`;
    log(`started redis-server on 127.0.0.1:${port}, data in ${dir}`);
  }
  let config: ReturnType<typeof loadGatewayConfig>;
  try {
    // A local development stack: authentication off (loopback only) unless OPENCLAW_AUTH says otherwise.
    const auth = process.env.OPENCLAW_AUTH ? undefined : 'none';
    config = loadGatewayConfig({
      env: process.env,
      flags: { port: options.port, redis: redisUrl, auth, 'log-format': options.logFormat },
    });
  } catch (error) {
    await stopChild(redis);
    if (error instanceof ConfigError) throw new Error(error.message);
    throw error;
  }
  // The gateway and worker run in this process, so their lines are readable whenever its stdout is a terminal.
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    base: { replicaId: config.replicaId },
  });
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, { logger });
  } catch (error) {
    await stopChild(redis);
    throw new Error(`the gateway did not start: ${(error as Error).message}`);
  }
  logger.info({ port: gateway.port, host: config.host }, 'gateway ready');
  let worker: TaskWorker;
  try {
    const workerConfig = loadWorkerConfig({
      env: process.env,
      // With the gateway on any free port, the worker's metrics port is any free one too.
      flags: { redis: redisUrl, port: options.port === '0' ? '0' : undefined, 'log-format': options.logFormat },
    });
    worker = await TaskWorker.start(
      { ...workerConfig, workerHttpAgentsAllowPrivate: config.httpAgentsAllowPrivateResolved },
      {
        logger: createLogger({
          level: workerConfig.logLevel,
          format: workerConfig.logFormat,
          base: { workerId: workerConfig.workerId },
        }),
      },
    );
  } catch (error) {
    await gateway.close();
    await stopChild(redis);
    throw new Error(`the worker did not start: ${(error as Error).message}`);
  }
  log(
    `stack is up: gateway ws://${config.host}:${gateway.port} (HTTP http://${config.host}:${gateway.port}/status, metrics /metrics, Mission Control http://${config.host}:${gateway.port}/dashboard/), worker ${worker.id} (metrics http://127.0.0.1:${worker.status().port}/metrics). Ctrl-C stops it.`,
  );
  redis?.once('exit', (code) => {
    if (signals.received === undefined)
      log(`redis-server exited (code ${code}); the gateway keeps retrying until it is back`);
  });
  await signals.next();
  log('stopping');
  signals.onRepeat(() => process.exit(1));
  redis?.removeAllListeners('exit');
  await Promise.all([gateway.close(), worker.close()]);
  await stopChild(redis);
  log('stopped');
  signals.dispose();
}

/** SIGINT and SIGTERM from the start of `up`: the first is kept until the stack is up, a second one while stopping exits at once. */
class StopSignals {
  received: NodeJS.Signals | undefined;
  private wake: (() => void) | undefined;
  private repeat: (() => void) | undefined;
  private readonly handler = (signal: NodeJS.Signals): void => {
    if (this.received !== undefined) {
      this.repeat?.();
      return;
    }
    this.received = signal;
    this.wake?.();
  };

  constructor() {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  /** Resolves on the first signal, at once if it came already. */
  next(): Promise<void> {
    if (this.received !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  onRepeat(action: () => void): void {
    this.repeat = action;
  }

  dispose(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }
}

async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--daemonize',
      'no',
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await new Promise<void>((ok, fail) => {
    child.once('error', (error: NodeJS.ErrnoException) =>
      fail(
        new Error(
          error.code === 'ENOENT'
            ? 'redis-server is not installed: install it (apt-get install redis-server) or set REDIS_URL'
            : `redis-server failed to start: ${error.message}`,
        ),
      ),
    );
    child.once('exit', (code) => fail(new Error(`redis-server exited at start (code ${code})`)));
    const started = Date.now();
    const poll = (): void => {
      const socket = new Socket();
      socket.once('connect', () => {
        socket.destroy();
        ok();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() - started > 10_000) fail(new Error('redis-server did not accept connections within 10 s'));
        else setTimeout(poll, 50);
      });
      socket.connect(port, '127.0.0.1');
    };
    poll();
  });
  child.removeAllListeners('exit');
  return child;
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? ok(address.port) : fail(new Error('no port'))));
    });
  });
}
