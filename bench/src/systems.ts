// The three systems under test. Each runs two server processes (A and B) on a redis-server of its own;
// the echo agent connects to B and the caller to A, both from the benchmark process, one connection each.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { ApiKeyStore, connectRedis, createRedisConnection, RedisKeys, silentLogger } from '@openclaw/core';
import type Redis from 'ioredis';
import { io as ioClient, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { Pending } from './pending';
import { freePort, launch, startRedis, waitForHttp, waitForPort } from './processes';

/** A process of a system whose CPU time is measured. */
export interface ServerProcess {
  /** `redis 1`, `redis 2`, ...: the masters of a Redis Cluster. */
  role: 'server A' | 'server B' | 'redis' | `redis ${number}`;
  pid: number;
}

/** A caller connection to server A of a system. */
export interface Caller {
  request(data: unknown): Promise<unknown>;
  close(): void;
}

/** A system under test, running, with its agent registered and its caller connected. */
export interface RunningSystem {
  key: 'openclaw' | 'socketio' | 'relay';
  name: string;
  /** One request/response on the system's one caller connection: resolves with the agent's output. */
  request(data: unknown): Promise<unknown>;
  /** Opens another caller connection to server A (one connection per in-flight call). */
  openCaller(): Promise<Caller>;
  processes: ServerProcess[];
  redisUrl: string;
  /** Counters read from the system's Redis when nothing is in flight (leak checks). */
  inspect?(redis: Redis): Promise<Record<string, number>>;
  /** Closes the client connections (the processes are killed by the caller of the benchmark). */
  close(): void;
}

const REPO = path.resolve(__dirname, '..', '..');
const CLI = path.join(REPO, 'packages', 'cli', 'dist', 'bin.js');
const SOCKETIO_SERVER = path.join(__dirname, 'socketio-server.js');
const RELAY_SERVER = path.join(__dirname, 'relay-server.js');

/** The secret stored API keys are hashed with, on both replicas (the production default is API keys). */
const API_KEY_SECRET = 'bench-api-key-secret-of-at-least-32-characters';

/**
 * Settings of the OpenClaw replicas: authentication by stored API keys, audit and governance as they
 * come; the per-connection rate limit is lifted, nothing else changes.
 */
export const OPENCLAW_ENV = {
  NODE_OPTIONS: imageNodeOptions(),
  OPENCLAW_API_KEY_SECRET: API_KEY_SECRET,
  OPENCLAW_LOG_LEVEL: 'warn',
  OPENCLAW_RATE_LIMIT: '1000000',
  OPENCLAW_RATE_BURST: '1000000',
  // Cluster-wide buckets high enough never to refuse, so their cost is measured but not their limit.
  OPENCLAW_PRINCIPAL_RATE: '10000000',
  OPENCLAW_PRINCIPAL_BURST: '10000000',
};

/** The Node.js options the image runs its processes with (`NODE_OPTIONS` in `deploy/Dockerfile`). */
export function imageNodeOptions(): string {
  const dockerfile = readFileSync(path.join(REPO, 'deploy', 'Dockerfile'), 'utf8');
  const found = /^\s*NODE_OPTIONS="([^"]*)"/m.exec(dockerfile);
  if (!found) throw new Error('deploy/Dockerfile sets no NODE_OPTIONS');
  return found[1]!;
}

/**
 * With `BENCH_CPU_PROF=<dir>`, OpenClaw's replicas run under `node --cpu-prof` and write
 * `<dir>/<name>.cpuprofile` when they stop (the benchmark stops them with SIGTERM); summarise one
 * with `node bench/dist/profile-summary.js <file>`. `BENCH_NODE_ARGS` adds node options of its own
 * (`--trace-gc`, say, which `NODE_OPTIONS` refuses; each process's log in `bench/results/logs` shows it).
 */
export function cpuProfileArgs(name: string): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  const extra = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  return [
    ...(dir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(dir)}`, `--cpu-prof-name=${name}.cpuprofile`] : []),
    ...extra,
  ];
}

/**
 * The echo agent's concurrency on OpenClaw (well above the highest level measured), and the deadline
 * of each call (the protocol's default).
 */
export const ECHO_AGENT_CONCURRENCY = 256;
export const CALL_TIMEOUT_MS = 30_000;

/** The command line of an OpenClaw replica on loopback, authenticating by API keys (after node's own options). */
export function openClawReplicaArgs(port: number, redisUrl: string): string[] {
  return [
    CLI,
    'gateway',
    'start',
    '--auth',
    'apikey',
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--redis',
    redisUrl,
  ];
}

/** Stored API keys of the echo agent (role `agent`) and of the caller (role `caller`), as operators make them. */
export async function createApiKeys(redisUrl: string, tenant = 'default'): Promise<{ agent: string; caller: string }> {
  const redis = createRedisConnection({ url: redisUrl, role: 'command', name: 'bench', logger: silentLogger() });
  await connectRedis(redis, redisUrl, 10_000);
  try {
    const store = new ApiKeyStore(redis, new RedisKeys('openclaw'), API_KEY_SECRET);
    const make = async (role: string) =>
      (await store.create({ name: `bench ${role}`, role, tenant, createdBy: 'bench' })).key;
    return { agent: await make('agent'), caller: await make('caller') };
  } finally {
    redis.disconnect();
  }
}

function openWs(url: string, apiKey?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      ...(apiKey ? { headers: { 'x-api-key': apiKey } } : {}),
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Fails every pending request if the caller's connection closes, so the benchmark stops loudly. */
function failOnClose(ws: WebSocket, pending: Pending, name: string): void {
  ws.on('close', (code) => pending.failAll(`${name}: caller connection closed (${code})`));
}

/** Checks that a request makes the round trip and comes back unchanged. */
async function verifyEcho(system: RunningSystem): Promise<RunningSystem> {
  const probe = { probe: system.key, at: Date.now(), nested: { list: [1, 'two', null] } };
  const output = await system.request(probe);
  if (!isDeepStrictEqual(output, probe)) {
    throw new Error(`${system.name}: echo came back as ${JSON.stringify(output)}, not ${JSON.stringify(probe)}`);
  }
  return system;
}

/** OpenClaw Gateway: two real replicas (`openclaw gateway start`); `coordinator` in, `task.result` back. */
export async function startOpenClaw(
  extraEnv: Record<string, string> = {},
  on?: { url: string; processes: ServerProcess[]; name: string; tenants?: number },
): Promise<RunningSystem> {
  const redis = on ?? (await startRedis('openclaw-redis'));
  const ports = [await freePort(), await freePort()];
  const replicas = ports.map((port, i) =>
    launch(
      process.execPath,
      [
        ...cpuProfileArgs(`openclaw-replica-${i === 0 ? 'a' : 'b'}`),
        ...openClawReplicaArgs(port, redis.url),
        '--replica-id',
        `bench-${i === 0 ? 'a' : 'b'}`,
      ],
      { name: `openclaw-replica-${i === 0 ? 'a' : 'b'}`, env: { ...OPENCLAW_ENV, ...extraEnv } },
    ),
  );
  await Promise.all(ports.map((port) => waitForHttp(`http://127.0.0.1:${port}/readyz`)));

  // One tenant by default; with `tenants`, as many, each with its echo agent on B and its caller on A
  // (the calls go to the tenants in turn): tenants' audit trails and records are keys of their own.
  const tenants = Array.from({ length: on?.tenants ?? 1 }, (_, i) => (i === 0 ? 'default' : `tenant-${i}`));
  const agents: WebSocket[] = [];
  const callers: Caller[] = [];
  let openCaller = (): Promise<Caller> => Promise.reject(new Error('no tenant'));
  for (const tenant of tenants) {
    const keys = await createApiKeys(redis.url, tenant);
    agents.push(await echoAgent(ports[1]!, keys.agent));
    const open = () => openClawCaller(ports[0]!, keys.caller);
    if (callers.length === 0) openCaller = open;
    callers.push(await open());
  }
  let turn = 0;
  const request =
    callers.length === 1 ? callers[0]!.request : (data: unknown) => callers[turn++ % callers.length]!.request(data);
  return verifyEcho({
    key: 'openclaw',
    name: on?.name ?? 'OpenClaw Gateway',
    request,
    openCaller,
    processes: [
      { role: 'server A', pid: replicas[0]!.pid! },
      { role: 'server B', pid: replicas[1]!.pid! },
      ...(on ? on.processes : [{ role: 'redis' as const, pid: (redis as { pid: number }).pid }]),
    ],
    redisUrl: redis.url,
    ...(on ? {} : { inspect: openClawReservations }),
    close() {
      for (const caller of callers) caller.close();
      for (const agent of agents) agent.terminate();
    },
  });
}

/** The echo agent `echo` on the replica at `port`, registered: every task's data comes back as its output. */
async function echoAgent(port: number, apiKey: string): Promise<WebSocket> {
  const agent = await openWs(`ws://127.0.0.1:${port}`, apiKey);
  const registered = new Promise<void>((resolve, reject) => {
    agent.on('message', (raw) => {
      const f = JSON.parse(String(raw)) as {
        event?: string;
        taskId?: string;
        data?: unknown;
        id?: number;
        ok?: boolean;
      };
      if (f.event === 'task') {
        agent.send(JSON.stringify({ action: 'task.result', taskId: f.taskId, output: f.data }));
      } else if (f.id === 0) {
        if (f.ok) resolve();
        else reject(new Error(`OpenClaw: register failed: ${JSON.stringify(f)}`));
      }
    });
  });
  agent.send(JSON.stringify({ action: 'register', id: 0, name: 'echo', concurrency: ECHO_AGENT_CONCURRENCY }));
  await registered;
  return agent;
}

/** A caller of OpenClaw: `coordinator` frames out, responses matched by id. */
async function openClawCaller(port: number, apiKey: string): Promise<Caller> {
  const socket = await openWs(`ws://127.0.0.1:${port}`, apiKey);
  const pending = new Pending('OpenClaw');
  failOnClose(socket, pending, 'OpenClaw');
  socket.on('message', (raw) => {
    const f = JSON.parse(String(raw)) as {
      id?: number;
      ok?: boolean;
      result?: { output?: unknown };
      error?: { code: string; message: string };
    };
    if (typeof f.id !== 'number') return;
    pending.settle(f.id, f.ok ? { output: f.result?.output } : { error: `${f.error?.code}: ${f.error?.message}` });
  });
  return {
    request: (data) =>
      pending.open((id) =>
        socket.send(
          JSON.stringify({ action: 'coordinator', id, agent: 'echo', task: 'echo', data, timeoutMs: CALL_TIMEOUT_MS }),
        ),
      ),
    close() {
      pending.close();
      socket.terminate();
    },
  };
}

/**
 * Tasks agent instances still hold (as their replicas report them, about 100 ms after a change), read
 * once the counts have settled: with nothing in flight, every one is a leak.
 */
async function openClawReservations(redis: Redis): Promise<Record<string, number>> {
  await new Promise((resolve) => setTimeout(resolve, 300));
  let reservations = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', '*:instance:*', 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      if (key.endsWith(':load')) continue;
      reservations += Number((await redis.hget(key, 'inFlight')) ?? 0);
    }
  } while (cursor !== '0');
  return { reservations };
}

function connectSocketIo(port: number): Promise<Socket> {
  const socket = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

/** A caller of Socket.IO: `request` events out, `response` events matched by id. */
async function socketIoCaller(port: number): Promise<Caller> {
  const socket = await connectSocketIo(port);
  const pending = new Pending('Socket.IO');
  socket.on('disconnect', (reason) => pending.failAll(`Socket.IO: caller disconnected (${reason})`));
  socket.on('response', (m: { id: number; output: unknown }) => pending.settle(m.id, { output: m.output }));
  return {
    request: (data) => pending.open((id) => socket.emit('request', { id, agent: 'echo', data })),
    close() {
      pending.close();
      socket.disconnect();
    },
  };
}

/** Socket.IO 4 + @socket.io/redis-adapter: two servers; the request and the reply both cross the adapter. */
export async function startSocketIo(): Promise<RunningSystem> {
  const redis = await startRedis('socketio-redis');
  const ports = [await freePort(), await freePort()];
  const servers = ports.map((port, i) =>
    launch(
      process.execPath,
      [...cpuProfileArgs(`socketio-server-${i === 0 ? 'a' : 'b'}`), SOCKETIO_SERVER, String(port), redis.url],
      {
        name: `socketio-server-${i === 0 ? 'a' : 'b'}`,
        ipc: true,
      },
    ),
  );
  await Promise.all(ports.map((port) => waitForPort(port)));

  const agent = await connectSocketIo(ports[1]!);
  agent.on('task', (m: { id: number; from: string; data: unknown }) =>
    agent.emit('result', { id: m.id, from: m.from, output: m.data }),
  );
  await new Promise<void>((resolve) => agent.emit('register', 'echo', () => resolve()));

  const openCaller = () => socketIoCaller(ports[0]!);
  const caller = await openCaller();
  return verifyEcho({
    key: 'socketio',
    name: 'Socket.IO 4 + redis-adapter',
    request: caller.request,
    openCaller,
    processes: [
      { role: 'server A', pid: servers[0]!.pid! },
      { role: 'server B', pid: servers[1]!.pid! },
      { role: 'redis', pid: redis.pid },
    ],
    redisUrl: redis.url,
    close() {
      caller.close();
      agent.disconnect();
    },
  });
}

/** The floor: two bare ws + Redis pub/sub relay processes. */
export async function startRelay(): Promise<RunningSystem> {
  const redis = await startRedis('relay-redis');
  const ports = [await freePort(), await freePort()];
  const relays = ports.map((port, i) =>
    launch(process.execPath, [RELAY_SERVER, String(port), redis.url, `r${i}`], {
      name: `relay-server-${i === 0 ? 'a' : 'b'}`,
      ipc: true,
    }),
  );
  await Promise.all(ports.map((port) => waitForPort(port)));

  const agent = await openWs(`ws://127.0.0.1:${ports[1]}`);
  const registered = new Promise<void>((resolve) => {
    agent.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { t: string; id: number; from: string; data: unknown };
      if (m.t === 'task') agent.send(JSON.stringify({ t: 'result', id: m.id, from: m.from, output: m.data }));
      else if (m.t === 'registered') resolve();
    });
  });
  agent.send(JSON.stringify({ t: 'register', name: 'echo' }));
  await registered;

  const openCaller = () => relayCaller(ports[0]!);
  const caller = await openCaller();
  return verifyEcho({
    key: 'relay',
    name: 'bare ws + Redis relay (floor)',
    request: caller.request,
    openCaller,
    processes: [
      { role: 'server A', pid: relays[0]!.pid! },
      { role: 'server B', pid: relays[1]!.pid! },
      { role: 'redis', pid: redis.pid },
    ],
    redisUrl: redis.url,
    close() {
      caller.close();
      agent.terminate();
    },
  });
}

/** A caller of the relay: `request` messages out, `response` messages matched by id. */
async function relayCaller(port: number): Promise<Caller> {
  const socket = await openWs(`ws://127.0.0.1:${port}`);
  const pending = new Pending('relay');
  failOnClose(socket, pending, 'relay');
  socket.on('message', (raw) => {
    const m = JSON.parse(String(raw)) as { t: string; id: number; output: unknown };
    if (m.t === 'response') pending.settle(m.id, { output: m.output });
  });
  return {
    request: (data) => pending.open((id) => socket.send(JSON.stringify({ t: 'request', id, agent: 'echo', data }))),
    close() {
      pending.close();
      socket.terminate();
    },
  };
}
