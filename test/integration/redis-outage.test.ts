import {
  AsyncTasks,
  asyncTaskDefaults,
  connectRedis,
  createRedisConnection,
  RedisClusterBus,
  RedisKeys,
  silentLogger,
  TaskLedger,
  TaskQueue,
} from '@openclaw/core';
import { connect, type GatewayClient, GatewayError } from '@openclaw/sdk';
import type Redis from 'ioredis';
import { type Cluster, startCluster } from '../helpers/cluster';
import type { GatewayProcess } from '../helpers/gateway-process';
import { RedisServerProcess } from '../helpers/redis-server';
import { delay, waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const PRESENCE_TTL_MS = 2000;
/** How long Redis stays down. */
const OUTAGE_MS = 10_000;
/**
 * The documented bound (docs/operations.md, "When Redis is down") from Redis answering again to every
 * replica ready and every worker taking jobs: every connection retries at least once a second, then
 * its ready check. The test waits a generous multiple of it and asserts no tighter timing.
 */
const RECOVERY_BOUND_MS = 2_000;
/**
 * The documented bound for a job a worker was taking at the instant Redis died (Redis ran the move
 * to active, the answer was lost): its lock expires, then the next stalled-job check puts it back.
 * Both take `OPENCLAW_WORKER_LOCK_MS` (30 s by default), counted from the crash.
 */
const STALLED_JOB_BOUND_MS = 2 * 30_000;
/** Jobs each worker runs at once: low, so that a backlog is still queued when Redis dies. */
const WORKER_CONCURRENCY = 4;
/** Async tasks for the slow agent submitted just before the kill: most are still queued then. */
const BACKLOG = 60;
const SYNC_TIMEOUT_MS = 10_000;
const TERMINAL = new Set(['completed', 'failed', 'canceled', 'rejected']);

type Phase = 'before' | 'down' | 'after';

async function readyz(httpUrl: string): Promise<number> {
  return (await fetch(`${httpUrl}/readyz`)).status;
}

/** `openclaw_jobs_total{kind="task",outcome="completed"}` of a worker. */
async function completedJobs(worker: GatewayProcess): Promise<number> {
  const text = await (await fetch(`${worker.httpUrl}/metrics`)).text();
  const line = /^openclaw_jobs_total\{kind="task",outcome="completed"\} (\d+)/m.exec(text);
  return Number(line?.[1] ?? 0);
}

function bump(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function json(counts: Map<string, number>): string {
  return JSON.stringify(Object.fromEntries(counts));
}

/**
 * Redis killed (SIGKILL) for ten seconds under steady sync and async load, then restarted from its
 * append-only file: no process exits, readiness turns 503 everywhere, calls fail fast with
 * UNAVAILABLE, every replica and worker recovers by itself, and every accepted async task completes.
 */
describe('Redis down for ten seconds under load (AOF)', () => {
  let cluster: Cluster;
  const clients: GatewayClient[] = [];
  const sockets: TestSocket[] = [];

  const open = async (url: string): Promise<GatewayClient> => {
    const client = await connect({ url, reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } });
    clients.push(client);
    return client;
  };
  const socket = async (url: string): Promise<TestSocket> => {
    const s = await TestSocket.open(url);
    sockets.push(s);
    return s;
  };

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 3,
      workers: 2,
      appendOnly: true,
      env: { OPENCLAW_PRESENCE_TTL_MS: String(PRESENCE_TTL_MS) },
      workerEnv: { OPENCLAW_WORKER_CONCURRENCY: String(WORKER_CONCURRENCY) },
    });
  });
  afterAll(async () => {
    await Promise.allSettled([...clients.map((c) => c.close()), ...sockets.map((s) => s.close())]);
    await cluster?.stop();
  });

  it('fails fast while Redis is down, recovers by itself, and loses no queued task', async () => {
    const processes = [...cluster.gateways, ...cluster.workers];
    const [a, , c] = cluster.gateways as [GatewayProcess, GatewayProcess, GatewayProcess];
    // On every replica: a fast agent for the steady load and a slow one for the backlog. On C only:
    // an agent that callers on A reach through the bus.
    for (const gateway of cluster.gateways) {
      const client = await open(gateway.url);
      const steady = client.agent('steady', { concurrency: 16 });
      steady.handle('work', async (data) => {
        await delay(5); // the work itself: a short task
        return { done: data };
      });
      await steady.register();
      const slow = client.agent('slow', { concurrency: 16 });
      slow.handle('work', async (data) => {
        await delay(300); // the work itself: slow, so that a backlog is still queued at the kill
        return { done: data };
      });
      await slow.register();
      if (gateway === c) {
        const remote = client.agent('remote', { concurrency: 16 });
        remote.handle('work', async (data) => ({ done: data }));
        await remote.register();
      }
    }

    let phase: Phase = 'before';
    let running = true;
    let restartedAt = 0;

    // Sync load: one raw caller per replica to `steady`, and one on A to `remote` (on C). A request
    // with no answer 5 s past its deadline counts as HUNG.
    const sync = new Map<string, number>();
    const syncDown = new Map<string, number>();
    /** When, after the restart, a call to `remote` ended in AGENT_NOT_FOUND. */
    const notFoundAfterRestart: number[] = [];
    let syncId = 0;
    const callLoop = async (gateway: GatewayProcess, agent: string): Promise<void> => {
      const caller = await socket(gateway.url);
      while (running) {
        const sentIn = phase;
        const id = ++syncId;
        let key: string;
        try {
          const reply = await caller.request(
            { action: 'coordinator', id, agent, task: 'work', data: id, timeoutMs: SYNC_TIMEOUT_MS },
            SYNC_TIMEOUT_MS + 5_000,
          );
          const error = reply.error as { code: string; retryable: boolean } | undefined;
          key = reply.ok ? 'ok' : `${error?.code}${error?.retryable ? '' : ' (final)'}`;
        } catch {
          key = 'HUNG';
        }
        bump(sync, key);
        if (sentIn === 'down' && phase === 'down') bump(syncDown, key);
        if (key === 'AGENT_NOT_FOUND (final)' && phase === 'after') notFoundAfterRestart.push(Date.now() - restartedAt);
        if (key !== 'ok') await delay(20); // pacing: no spinning on fast refusals
      }
    };
    const callLoops = [...cluster.gateways.map((g) => callLoop(g, 'steady')), callLoop(a, 'remote')];

    // Async load: one submitter per replica, one idempotency key per task; a submit refused with a
    // retryable error is sent again with the same key until it is accepted.
    const accepted = new Map<string, Phase>();
    const submits = new Map<string, number>();
    let resubmits = 0;
    const submitters = await Promise.all(cluster.gateways.map((g) => open(g.url)));
    const submitLoops = submitters.map(async (client, i) => {
      for (let n = 1; running; n++) {
        for (;;) {
          try {
            const key = `steady-${i}-${n}`;
            const { taskId, status } = await client.submit('steady', 'work', { i, n }, { idempotencyKey: key });
            bump(submits, status === 'submitted' ? 'accepted' : `accepted as ${status}`);
            if (!accepted.has(taskId)) accepted.set(taskId, phase);
            break;
          } catch (error) {
            const e = error as GatewayError;
            if (!(e instanceof GatewayError && e.retryable)) {
              bump(submits, `FINAL ${e.code ?? e}`);
              break;
            }
            bump(submits, e.code);
            resubmits += 1;
            await delay(100); // pacing: a short back-off before sending it again
          }
        }
        await delay(30); // pacing: a steady stream, not a flood
      }
    });

    await waitFor(() => (sync.get('ok') ?? 0) >= 100 && accepted.size >= 30, {
      what: 'steady load before the outage',
      timeoutMs: 20_000,
    });

    // A backlog for the slow agent, submitted just before the kill: the workers run 8 jobs at a time.
    const backlogClient = submitters[0]!;
    const backlogIds = await Promise.all(
      Array.from({ length: BACKLOG }, async (_, n) => {
        const { taskId } = await backlogClient.submit('slow', 'work', { n }, { idempotencyKey: `slow-${n}` });
        accepted.set(taskId, 'before');
        return taskId;
      }),
    );
    const queuedAtKill = (await Promise.all(backlogIds.map((id) => backlogClient.taskGet(id)))).filter(
      (t) => t.status === 'submitted',
    ).length;

    await cluster.redis.kill();
    const killedAt = Date.now();
    phase = 'down';

    // While Redis is down: readiness 503 everywhere, every process keeps running, calls fail fast.
    const notReadyMs = await waitFor(
      async () => {
        const statuses = await Promise.all(processes.map((p) => readyz(p.httpUrl)));
        return statuses.every((s) => s === 503) && Math.max(1, Date.now() - killedAt);
      },
      { what: 'every replica and worker to report not ready', timeoutMs: OUTAGE_MS },
    );
    // The outage lasts OUTAGE_MS whatever happens: all along, every process stays up and not ready.
    while (Date.now() < killedAt + OUTAGE_MS) {
      expect(processes.filter((p) => !p.isRunning).map((p) => p.replicaId)).toEqual([]);
      expect(await Promise.all(processes.map((p) => readyz(p.httpUrl)))).toEqual([503, 503, 503, 503, 503]);
      await delay(500);
    }

    await cluster.redis.restart();
    restartedAt = Date.now();
    phase = 'after';
    const jobsAtRestart = await Promise.all(cluster.workers.map(completedJobs));
    const recovery = { replicasReadyMs: -1, workersReadyMs: -1, workersRunningJobsMs: -1 };
    await waitFor(
      async () => {
        const elapsed = Date.now() - restartedAt;
        if (recovery.replicasReadyMs < 0) {
          const replicas = await Promise.all(cluster.gateways.map((g) => readyz(g.httpUrl)));
          if (replicas.every((s) => s === 200)) recovery.replicasReadyMs = elapsed;
        }
        if (recovery.workersReadyMs < 0) {
          const workers = await Promise.all(cluster.workers.map((w) => readyz(w.httpUrl)));
          if (workers.every((s) => s === 200)) recovery.workersReadyMs = elapsed;
        }
        if (recovery.workersRunningJobsMs < 0) {
          const jobs = await Promise.all(cluster.workers.map(completedJobs));
          if (jobs.every((n, i) => n > jobsAtRestart[i]!)) recovery.workersRunningJobsMs = elapsed;
        }
        return Object.values(recovery).every((ms) => ms >= 0);
      },
      { what: 'every replica ready and every worker running jobs again', timeoutMs: 10 * RECOVERY_BOUND_MS },
    );

    // The load goes on after the recovery, then stops.
    const okAtRecovery = sync.get('ok') ?? 0;
    const acceptedAtRecovery = accepted.size;
    await waitFor(() => (sync.get('ok') ?? 0) >= okAtRecovery + 100 && accepted.size >= acceptedAtRecovery + 30, {
      what: 'steady load after the recovery',
      timeoutMs: 20_000,
    });
    running = false;
    await Promise.all([...callLoops, ...submitLoops]);

    // Every accepted task ends, completed. A job caught in the move to a worker when Redis died
    // comes back only as a stalled job: the wait allows twice that bound, from the kill.
    const reader = submitters[0]!;
    const ends = new Map<string, string>();
    const notCompleted: unknown[] = [];
    const attempts = new Map<string, number>();
    let lastEndedAt = 0;
    await waitFor(
      async () => {
        const unfinished = [...accepted.keys()].filter((id) => !ends.has(id));
        for (const r of await Promise.all(unfinished.map((id) => reader.taskGet(id)))) {
          if (!TERMINAL.has(r.status)) continue;
          ends.set(r.taskId, r.status);
          bump(attempts, String(r.attempts));
          lastEndedAt = Math.max(lastEndedAt, r.updatedAt);
          if (r.status !== 'completed') notCompleted.push(r);
        }
        return ends.size === accepted.size;
      },
      {
        what: 'every accepted async task to end',
        timeoutMs: killedAt + 2 * STALLED_JOB_BOUND_MS - Date.now(),
        intervalMs: 500,
      },
    );
    const statuses = new Map<string, number>();
    for (const status of ends.values()) bump(statuses, status);
    const byPhase = new Map<string, number>();
    for (const p of accepted.values()) bump(byPhase, p);

    console.log(
      `Redis down ${OUTAGE_MS / 1000} s under load (3 replicas, 2 workers, AOF):\n` +
        `  sync calls ${json(sync)}; sent and answered while down ${json(syncDown)}\n` +
        `  async accepted ${accepted.size} ${json(byPhase)} (backlog ${BACKLOG}, ${queuedAtKill} still queued at the kill); ` +
        `ended ${json(statuses)}; attempts ${json(attempts)}\n` +
        `  submits ${json(submits)}, ${resubmits} sent again with their key\n` +
        `  every process not ready ${notReadyMs} ms after the kill; after Redis answered again: replicas ready in ` +
        `${recovery.replicasReadyMs} ms, workers ready in ${recovery.workersReadyMs} ms, both workers completing jobs in ` +
        `${recovery.workersRunningJobsMs} ms; last async task ended ${lastEndedAt - restartedAt} ms after the restart; ` +
        `AGENT_NOT_FOUND for the agent on C at ${JSON.stringify(notFoundAfterRestart)} ms after the restart`,
    );

    expect(processes.filter((p) => !p.isRunning).map((p) => p.replicaId)).toEqual([]);
    // While Redis was down, every call was refused at once with UNAVAILABLE (retryable): none waited
    // for its deadline (TIMEOUT) and none hung.
    expect(syncDown.get('UNAVAILABLE')).toBeGreaterThan(100);
    expect([...syncDown.keys()]).toEqual(['UNAVAILABLE']);
    // Over the whole test: success or a retryable refusal. Right after the restart, until C has
    // written its presence again, its agent is registered but unreachable (AGENT_UNAVAILABLE), never
    // unknown: no replica sweeps another for one presence TTL after its own Redis comes back.
    expect([...sync.keys()].filter((k) => !['ok', 'UNAVAILABLE', 'AGENT_UNAVAILABLE'].includes(k))).toEqual([]);
    expect(notFoundAfterRestart).toEqual([]);
    // Every submit was accepted or refused retryably, and a refused one sent again became a task.
    expect([...submits.keys()].filter((k) => !['accepted', 'UNAVAILABLE'].includes(k))).toEqual([]);
    expect(queuedAtKill).toBeGreaterThan(BACKLOG / 2);
    expect(notCompleted).toEqual([]);
    expect(statuses).toEqual(new Map([['completed', accepted.size]]));
  }, 240_000);
});

/**
 * The moment Redis comes back, a replica's connections reconnect one by one: a submit can be written
 * to the ledger and then refused by the queue's connection, which is still reconnecting. Its
 * submitter is told UNAVAILABLE (retryable) and sends it again with the same idempotency key.
 */
describe('an async submit refused because the queue connection was down', () => {
  let redis: RedisServerProcess;
  const connections: Redis[] = [];

  beforeAll(async () => {
    redis = await RedisServerProcess.start();
  });
  afterAll(async () => {
    for (const c of connections) c.disconnect();
    await redis?.stop();
  });

  it('is a new, queued task when sent again with the same idempotency key, not the refused one', async () => {
    const logger = silentLogger();
    const keys = new RedisKeys('refused');
    const open = async (role: 'command' | 'subscriber', name: string): Promise<Redis> => {
      const c = createRedisConnection({ url: redis.url, role, name, logger });
      connections.push(c);
      await connectRedis(c, redis.url, 5_000);
      return c;
    };
    const command = await open('command', 't:cmd');
    const queueConnection = await open('command', 't:queue');
    const queue = new TaskQueue(queueConnection, keys, logger);
    const ledger = new TaskLedger(command, keys);
    const bus = new RedisClusterBus({ replicaId: 't', keys, publisher: command, subscriber: command, logger });
    const tasks = new AsyncTasks({ redis: command, keys, ledger, queue, bus, logger, defaults: asyncTaskDefaults() });
    const from = { principal: 'alice', tenant: 'default' };
    const request = { agent: 'steady', task: 'work', data: 1, idempotencyKey: 'order-1' };

    expect(await queue.counts()).toMatchObject({ waiting: 0 });
    // Only the queue's connection drops; it reconnects by itself a moment later.
    const queueClientId = await queueConnection.client('ID');
    await command.client('KILL', 'ID', String(queueClientId));
    await waitFor(() => queueConnection.status !== 'ready', { what: 'the queue connection to drop', intervalMs: 1 });
    await expect(tasks.submit(from, request)).rejects.toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    await waitFor(() => queueConnection.status === 'ready', { what: 'the queue connection to come back' });

    const again = await tasks.submit(from, request);
    expect(again).toEqual({ taskId: expect.any(String), status: 'submitted' });
    expect(await queue.state(again.taskId)).toBe('waiting');
    // And the key now stands for that task.
    expect(await tasks.submit(from, request)).toEqual({ taskId: again.taskId, status: 'submitted', duplicate: true });
    await queue.close();
  });
});
