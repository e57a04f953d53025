// Child processes of the benchmark: every one is killed when the benchmark exits, whether it ends
// normally, fails, or is interrupted (Ctrl-C, SIGTERM, SIGHUP). Their output goes to log files.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let stopping = false;

function killEverything(): void {
  stopping = true;
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

// The last resort, synchronous: on any exit (including an uncaught error) nothing is left running.
process.on('exit', killEverything);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping every process of the benchmark\n`);
    void stopAll().finally(() => process.exit(130));
  });
}

/** Where child processes write their stdout and stderr. */
export const LOG_DIR = path.resolve(__dirname, '..', 'results', 'logs');

export interface LaunchOptions {
  /** Name of the log file (without extension) and of the process in messages. */
  name: string;
  env?: Record<string, string>;
  /** Opens an IPC channel: our own scripts exit when it closes, so they never outlive the benchmark. */
  ipc?: boolean;
}

/** Spawns a child that is killed when this process exits; an unexpected exit of it ends the benchmark. */
export function launch(command: string, args: string[], options: LaunchOptions): ChildProcess {
  mkdirSync(LOG_DIR, { recursive: true });
  const logPath = path.join(LOG_DIR, `${options.name}.log`);
  const log = openSync(logPath, 'w');
  const stdio: ('ignore' | 'ipc' | number)[] = ['ignore', log, log];
  if (options.ipc) stdio.push('ipc');
  const child = spawn(command, args, { env: { ...process.env, ...options.env }, stdio });
  closeSync(log);
  children.add(child);
  child.once('exit', (code, signal) => {
    children.delete(child);
    if (stopping) return;
    process.stderr.write(`${options.name} exited unexpectedly (code ${code}, signal ${signal}); see ${logPath}\n`);
    process.exit(1);
  });
  return child;
}

/** Kills every child, without treating its exit as a failure, and waits (up to 2 s) until they are gone. */
export async function stopAll(): Promise<void> {
  const running = [...children];
  const gone = running.map((child) => new Promise((resolve) => child.once('exit', resolve)));
  killEverything();
  await Promise.race([Promise.all(gone), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
}

/** Sends SIGTERM to processes of the benchmark and waits (up to 15 s) until they have exited. */
export async function stopGracefully(processes: readonly { pid: number }[]): Promise<void> {
  const running = [...children].filter((child) => processes.some((p) => p.pid === child.pid));
  for (const child of running) {
    children.delete(child);
    child.removeAllListeners('exit');
  }
  const gone = running.map((child) => new Promise((resolve) => child.once('exit', resolve)));
  for (const child of running) child.kill('SIGTERM');
  await Promise.race([Promise.all(gone), sleep(15_000)]);
}

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once something accepts TCP connections on the loopback port. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
      socket.connect(port, '127.0.0.1');
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Polls an HTTP URL until it answers 200. */
export async function waitForHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(url).then(
      (response) => response.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > until) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** A redis-server of the benchmark's own on a free port, without persistence. */
export async function startRedis(
  name: string,
  extraArgs: readonly string[] = [],
): Promise<{ url: string; port: number; pid: number }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'openclaw-bench-redis-'));
  tempDirs.add(dir);
  const child = launch(
    'redis-server',
    // Its own directory, so nothing it might write lands in the repository.
    [
      ...extraArgs,
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      // As docs/operations.md recommends: expired keys freed in the background.
      '--lazyfree-lazy-expire',
      'yes',
      '--daemonize',
      'no',
      '--dir',
      dir,
    ],
    { name },
  );
  await waitForPort(port);
  return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid! };
}

/**
 * A Redis Cluster of `masters` masters and no replicas (`redis-cli --cluster create`), each with the
 * settings of {@link startRedis}: `url` is the `redis+cluster://` URL naming every master.
 */
export async function startRedisCluster(
  name: string,
  masters: number,
): Promise<{ url: string; masters: { url: string; port: number; pid: number }[] }> {
  const nodes: { url: string; port: number; pid: number }[] = [];
  for (let i = 0; i < masters; i++) {
    const args = [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-port',
      String(await freePort()),
    ];
    nodes.push(await startRedis(`${name}-${i + 1}`, args));
  }
  const create = spawn(
    'redis-cli',
    ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
    { stdio: 'ignore' },
  );
  const code = await new Promise<number | null>((resolve) => create.once('exit', resolve));
  if (code !== 0) throw new Error(`redis-cli --cluster create exited with ${code}`);
  const until = Date.now() + 20_000;
  for (const node of nodes) {
    for (;;) {
      const info = await redisCommand(node.port, 'CLUSTER INFO');
      if (/cluster_state:ok/.test(info)) break;
      if (Date.now() > until) throw new Error(`the Redis Cluster ${name} is not ready: ${info}`);
      await sleep(100);
    }
  }
  return { url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`, masters: nodes };
}

/** One inline command to the Redis on `port`, its reply as text. */
function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = '';
    socket.once('error', () => resolve(''));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      // A bulk reply: `$<length>\r\n<text>\r\n`.
      const header = /^\$(\d+)\r\n/.exec(reply);
      if (header && reply.length >= header[0].length + Number(header[1]) + 2) {
        socket.destroy();
        resolve(reply.slice(header[0].length, header[0].length + Number(header[1])));
      } else if (/^[-+]/.test(reply) && reply.endsWith('\r\n')) {
        socket.destroy();
        resolve(reply);
      }
    });
    socket.connect(port, '127.0.0.1', () => socket.write(`${command}\r\n`));
  });
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every mainstream Linux). */
const USER_HZ = 100;

/** CPU time (user + system) a process has used so far, in ms; undefined where /proc is unavailable. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime are 14, 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}

/** Runs a benchmark's main function: exit 0 when it is done; on an error, print it, stop every child, exit 1. */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    async (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      await stopAll();
      process.exit(1);
    },
  );
}
