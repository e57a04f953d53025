import { randomBytes } from 'node:crypto';
import { GatewayProcess, type GatewayProcessOptions } from './gateway-process';
import { RedisClusterProcesses } from './redis-cluster';
import { RedisServerProcess } from './redis-server';
import { WorkerProcess } from './worker-process';
import { type Frame, TestSocket } from './ws-client';

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** How many gateway replicas. Default 2. */
  replicas?: number;
  /** Environment of every replica (e.g. a short presence TTL). */
  env?: Readonly<Record<string, string | undefined>>;
  auth?: GatewayProcessOptions['auth'];
  apiKeys?: readonly string[];
  /** How many worker processes (`openclaw worker start`). Default 0. */
  workers?: number;
  /** Environment of every worker (e.g. a short lock). */
  workerEnv?: Readonly<Record<string, string | undefined>>;
  /** Redis with AOF (`appendfsync always`), for tests that restart it and expect nothing lost. */
  appendOnly?: boolean;
  /** Run on a Redis Cluster (three masters with a replica each) instead of one Redis. */
  redisCluster?: boolean;
  /** The Redis Cluster's `cluster-node-timeout` in ms (how soon a dead master fails over). Default 2000. */
  redisClusterNodeTimeoutMs?: number;
}

/** A real Redis (or Redis Cluster) and real gateway replicas, with a key prefix of their own. */
export interface Cluster<R extends RedisServerProcess | RedisClusterProcesses = RedisServerProcess> {
  redis: R;
  gateways: GatewayProcess[];
  workers: WorkerProcess[];
  keyPrefix: string;
  /** Starts one more worker in this cluster. */
  addWorker(id: string, env?: Readonly<Record<string, string | undefined>>): Promise<WorkerProcess>;
  /** Starts one more replica in this cluster. */
  addReplica(id: string, env?: Readonly<Record<string, string | undefined>>): Promise<GatewayProcess>;
  /**
   * A rolling update of one replica: stops `replica` with SIGTERM (it drains), waits for it to exit,
   * and starts `newId` on the same port (so a load balancer in front finds it), in its place in
   * `gateways`. Resolves with the new replica and how the old one exited.
   */
  replaceReplica(
    replica: GatewayProcess,
    newId: string,
  ): Promise<{ replica: GatewayProcess; exit: Awaited<ReturnType<GatewayProcess['stop']>> }>;
  /** Stops every replica and worker still running, then Redis. */
  stop(): Promise<void>;
}

/** Starts Redis (or a Redis Cluster) and `replicas` gateways named `A`, `B`, ... */
export async function startCluster(
  options: ClusterOptions & { redisCluster: true },
): Promise<Cluster<RedisClusterProcesses>>;
export async function startCluster(options?: ClusterOptions): Promise<Cluster>;
export async function startCluster(
  options: ClusterOptions = {},
): Promise<Cluster<RedisServerProcess | RedisClusterProcesses>> {
  const redis =
    (options.redisCluster ?? process.env.OPENCLAW_TEST_REDIS === 'cluster')
      ? await RedisClusterProcesses.start({ nodeTimeoutMs: options.redisClusterNodeTimeoutMs })
      : await RedisServerProcess.start(
          options.appendOnly ? { args: ['--appendonly', 'yes', '--appendfsync', 'always'] } : {},
        );
  const keyPrefix = `t${randomBytes(4).toString('hex')}`;
  const gateways: GatewayProcess[] = [];
  const launch = (id: string, env?: Readonly<Record<string, string | undefined>>, port?: number) =>
    GatewayProcess.start({
      redisUrl: redis.url,
      replicaId: id,
      keyPrefix,
      port,
      auth: options.auth,
      apiKeys: options.apiKeys,
      env: { OPENCLAW_LOG_LEVEL: 'info', ...options.env, ...env },
    });
  const addReplica = async (
    id: string,
    env?: Readonly<Record<string, string | undefined>>,
  ): Promise<GatewayProcess> => {
    const gateway = await launch(id, env);
    gateways.push(gateway);
    return gateway;
  };
  const replaceReplica: Cluster['replaceReplica'] = async (replica, newId) => {
    const index = gateways.indexOf(replica);
    if (index < 0) throw new Error(`replica ${replica.replicaId} is not in this cluster`);
    const port = replica.port;
    // The drain window plus a margin: a replica that overstays it is killed, which the caller sees.
    const exit = await replica.stop('SIGTERM', 30_000);
    const fresh = await launch(newId, undefined, port);
    gateways[index] = fresh;
    return { replica: fresh, exit };
  };
  const workers: WorkerProcess[] = [];
  const addWorker = async (id: string, env?: Readonly<Record<string, string | undefined>>): Promise<WorkerProcess> => {
    const worker = await WorkerProcess.start({
      redisUrl: redis.url,
      replicaId: id,
      keyPrefix,
      env: { OPENCLAW_LOG_LEVEL: 'info', ...options.workerEnv, ...env },
    });
    workers.push(worker);
    return worker;
  };
  try {
    const names = 'ABCDEFGH'.slice(0, options.replicas ?? 2).split('');
    await Promise.all(names.map((id) => addReplica(id)));
    gateways.sort((a, b) => a.replicaId.localeCompare(b.replicaId));
    await Promise.all(Array.from({ length: options.workers ?? 0 }, (_, i) => addWorker(`W${i + 1}`)));
  } catch (error) {
    await Promise.allSettled([...gateways, ...workers].map((g) => g.stop()));
    await redis.stop();
    throw error;
  }
  return {
    redis,
    gateways,
    workers,
    keyPrefix,
    addReplica,
    replaceReplica,
    addWorker,
    async stop() {
      await Promise.allSettled([...gateways, ...workers].filter((g) => g.isRunning).map((g) => g.stop()));
      await redis.stop();
    },
  };
}

/** A raw-protocol agent: registers, and answers each task with `answer` (or not at all if it returns undefined). */
export interface TestAgent {
  socket: TestSocket;
  instanceId: string;
  /** Tasks received so far. */
  received: Frame[];
  close(): Promise<void>;
}

/** Options of {@link startAgent}. */
export interface TestAgentOptions {
  name: string;
  concurrency?: number;
  tasks?: string[];
  /**
   * Answers a task; `undefined` leaves it unanswered. `'manual'`: no automatic loop, the test reads
   * `task` events from the socket itself. Default: echo `{ echo: data, by: label }`.
   */
  answer?: ((task: Frame) => Frame | undefined) | 'manual';
  label?: string;
  headers?: Record<string, string>;
  /** The result-cache declaration sent with `register` (`{tasks, ttlMs}`). */
  cache?: unknown;
  /** JSON Schemas of its tasks' data, sent with `register` (`inputSchemas`). */
  inputSchemas?: Record<string, unknown>;
}

/** Connects an agent to a replica over the raw protocol. */
export async function startAgent(url: string, options: TestAgentOptions): Promise<TestAgent> {
  const socket = await TestSocket.open(url, { headers: options.headers });
  const received: Frame[] = [];
  const reply = await socket.request({
    action: 'register',
    id: 'reg',
    name: options.name,
    concurrency: options.concurrency,
    tasks: options.tasks,
    cache: options.cache,
    inputSchemas: options.inputSchemas,
  });
  if (reply.ok !== true) throw new Error(`register failed: ${JSON.stringify(reply)}`);
  const answer =
    options.answer ??
    ((t: Frame) => ({
      action: 'task.result',
      taskId: t.taskId,
      output: { echo: t.data, by: options.label ?? options.name },
    }));
  const loop = async (respond: (task: Frame) => Frame | undefined): Promise<void> => {
    for (;;) {
      let task: Frame;
      try {
        task = await socket.nextEvent('task', 3_600_000);
      } catch {
        return;
      }
      received.push(task);
      const frame = respond(task);
      try {
        if (frame) socket.send(frame);
      } catch {
        return; // The socket closed under us: the test is over with this agent.
      }
    }
  };
  if (answer !== 'manual') void loop(answer);
  return {
    socket,
    instanceId: (reply.result as { instanceId: string }).instanceId,
    received,
    close: async () => {
      await socket.close();
    },
  };
}
