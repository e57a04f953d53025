import path from 'node:path';
import { io as ioClient } from 'socket.io-client';
import WebSocket from 'ws';
import { freePort, launch, startRedis, waitForHttp, waitForPort } from './processes';

/** One request/response through the system: resolves when the caller has the agent's answer. */
export type Request = (data: unknown) => Promise<void>;

/** A system under test, running: two server processes on one Redis, an echo agent on B, a caller on A. */
export interface RunningSystem {
  name: string;
  request: Request;
  stop(): Promise<void>;
}

const REPO = path.resolve(__dirname, '..', '..');
const HERE = __dirname;

/** Resolves pending requests by id; every system's caller uses it the same way. */
class Pending {
  private next = 0;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  open(send: (id: number) => void): Promise<void> {
    const id = this.next++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      send(id);
    });
  }
  settle(id: number, error?: string): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    if (error) w.reject(new Error(error));
    else w.resolve();
  }
}

function openWs(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** OpenClaw Gateway: two real replicas (`openclaw gateway start`). */
export async function startOpenClaw(): Promise<RunningSystem> {
  const redis = await startRedis();
  const ports = [await freePort(), await freePort()];
  const env = {
    OPENCLAW_LOG_LEVEL: 'warn',
    // The benchmark is one connection sending as fast as it can: lift the per-connection limits.
    OPENCLAW_RATE_LIMIT: '1000000',
    OPENCLAW_RATE_BURST: '1000000',
    OPENCLAW_MAX_IN_FLIGHT: '100000',
    OPENCLAW_KEY_PREFIX: 'bench',
  };
  const cli = path.join(REPO, 'packages', 'cli', 'dist', 'bin.js');
  const replicas = ports.map((port, i) =>
    launch(
      process.execPath,
      [cli, 'gateway', 'start', '--port', String(port), '--redis', redis.url, '--replica-id', `r${i}`],
      env,
    ),
  );
  await Promise.all(ports.map((port) => waitForHttp(`http://127.0.0.1:${port}/readyz`)));
  const agent = await openWs(`ws://127.0.0.1:${ports[1]}`);
  agent.on('message', (raw) => {
    const f = JSON.parse(String(raw)) as { event?: string; taskId?: string; data?: unknown };
    if (f.event === 'task') agent.send(JSON.stringify({ action: 'task.result', taskId: f.taskId, output: f.data }));
  });
  await new Promise<void>((resolve) => {
    agent.once('message', () => resolve());
    agent.send(JSON.stringify({ action: 'register', id: 0, name: 'echo', concurrency: 10_000 }));
  });
  const caller = await openWs(`ws://127.0.0.1:${ports[0]}`);
  const pending = new Pending();
  caller.on('message', (raw) => {
    const f = JSON.parse(String(raw)) as { id?: number; ok?: boolean; error?: { code: string } };
    if (typeof f.id === 'number') pending.settle(f.id, f.ok ? undefined : f.error?.code);
  });
  return {
    name: 'OpenClaw Gateway',
    request: (data) =>
      pending.open((id) =>
        caller.send(JSON.stringify({ action: 'coordinator', id, agent: 'echo', task: 'echo', data })),
      ),
    async stop() {
      caller.terminate();
      agent.terminate();
      for (const r of replicas) r.kill('SIGKILL');
      redis.stop();
    },
  };
}

/** Socket.IO 4 with @socket.io/redis-adapter: two servers. */
export async function startSocketIo(): Promise<RunningSystem> {
  const redis = await startRedis();
  const ports = [await freePort(), await freePort()];
  const servers = ports.map((port) =>
    launch(process.execPath, [path.join(HERE, 'socketio-server.js'), String(port), redis.url]),
  );
  await Promise.all(ports.map((port) => waitForPort(port)));
  const agent = ioClient(`http://127.0.0.1:${ports[1]}`, { transports: ['websocket'] });
  agent.on('task', (m: { id: number; from: string; data: unknown }) =>
    agent.emit('result', { id: m.id, from: m.from, output: m.data }),
  );
  await new Promise<void>((resolve) => agent.emit('register', 'echo', () => resolve()));
  const caller = ioClient(`http://127.0.0.1:${ports[0]}`, { transports: ['websocket'] });
  await new Promise<void>((resolve) => caller.once('connect', () => resolve()));
  const pending = new Pending();
  caller.on('response', (m: { id: number }) => pending.settle(m.id));
  return {
    name: 'Socket.IO 4 + redis-adapter',
    request: (data) => pending.open((id) => caller.emit('request', { id, agent: 'echo', data })),
    async stop() {
      caller.disconnect();
      agent.disconnect();
      for (const s of servers) s.kill('SIGKILL');
      redis.stop();
    },
  };
}

/** The floor: a bare ws + Redis relay, two processes. */
export async function startRelay(): Promise<RunningSystem> {
  const redis = await startRedis();
  const ports = [await freePort(), await freePort()];
  const relays = ports.map((port, i) =>
    launch(process.execPath, [path.join(HERE, 'relay-server.js'), String(port), redis.url, `r${i}`]),
  );
  await Promise.all(ports.map((port) => waitForPort(port)));
  const agent = await openWs(`ws://127.0.0.1:${ports[1]}`);
  agent.on('message', (raw) => {
    const m = JSON.parse(String(raw)) as { t: string; id: number; from: string; data: unknown };
    if (m.t === 'task') agent.send(JSON.stringify({ t: 'result', id: m.id, from: m.from, output: m.data }));
  });
  await new Promise<void>((resolve) => {
    agent.once('message', () => resolve());
    agent.send(JSON.stringify({ t: 'register', name: 'echo' }));
  });
  const caller = await openWs(`ws://127.0.0.1:${ports[0]}`);
  const pending = new Pending();
  caller.on('message', (raw) => {
    const m = JSON.parse(String(raw)) as { t: string; id: number };
    if (m.t === 'response') pending.settle(m.id);
  });
  return {
    name: 'bare ws + Redis relay (floor)',
    request: (data) => pending.open((id) => caller.send(JSON.stringify({ t: 'request', id, agent: 'echo', data }))),
    async stop() {
      caller.terminate();
      agent.terminate();
      for (const r of relays) r.kill('SIGKILL');
      redis.stop();
    },
  };
}
