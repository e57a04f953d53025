import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import Redis from 'ioredis';
import { startAgent } from '../helpers/cluster';
import { GatewayProcess, type LogRecord } from '../helpers/gateway-process';
import { RedisServerProcess } from '../helpers/redis-server';
import { submitAsync, taskStatuses } from '../helpers/tasks';
import { createTestCertificates, type TestCertificates } from '../helpers/tls-certs';
import { waitFor } from '../helpers/wait';
import { WorkerProcess } from '../helpers/worker-process';
import { TestSocket } from '../helpers/ws-client';

/** The names the gateway and worker give their Redis connections, as `CLIENT LIST` shows them. */
async function clientNames(redis: RedisServerProcess, ca: Buffer): Promise<string[]> {
  const admin = new Redis(redis.url, { tls: { ca }, lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await admin.connect();
    const list = (await admin.client('LIST')) as string;
    return [...list.matchAll(/ name=(\S*)/g)].map((m) => m[1]!).filter((name) => name !== '');
  } finally {
    admin.disconnect();
  }
}

/** A replica of this Redis that is expected to fail at start-up: resolves once it has exited. */
async function failedReplica(redisUrl: string, env: Record<string, string | undefined>): Promise<GatewayProcess> {
  // The replica gives up on Redis after 2 s; the harness waits far longer, so what ends it is the
  // replica, not the harness.
  const gateway = new GatewayProcess({
    redisUrl,
    keyPrefix: 'tls-refused',
    env: { ...env, OPENCLAW_REDIS_STARTUP_TIMEOUT_MS: '2000' },
    startTimeoutMs: 30_000,
  });
  await expect(gateway.start()).rejects.toThrow(/exited \(code 1, signal null\) before it was ready/);
  return gateway;
}

const byMsg = (records: readonly LogRecord[], msg: string): LogRecord[] => records.filter((r) => r.msg === msg);

/**
 * Redis behind TLS with a private CA, as operations.md describes: a `rediss://` URL, and the CA given
 * to Node through `NODE_EXTRA_CA_CERTS`. The server has no plaintext listener at all.
 */
describe('Redis over TLS (rediss://) with a private CA', () => {
  let certs: TestCertificates;
  let redis: RedisServerProcess;
  let ca: Buffer;

  beforeAll(async () => {
    certs = await createTestCertificates();
    ca = await fs.promises.readFile(certs.caFile);
    redis = await RedisServerProcess.start({ tls: certs });
  });
  afterAll(async () => {
    await redis?.stop();
    await certs?.remove();
  });

  it('speaks only TLS: a plaintext client gets no answer', async () => {
    expect(redis.url).toBe(`rediss://127.0.0.1:${redis.port}`);
    const plain = new Redis({
      host: '127.0.0.1',
      port: redis.port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    plain.on('error', () => undefined);
    try {
      await expect(plain.connect().then(() => plain.ping())).rejects.toThrow();
    } finally {
      plain.disconnect();
    }
  });

  it('serves a replica and a worker given the CA: ready, sync calls, and async tasks through the queue', async () => {
    const keyPrefix = `t${randomBytes(4).toString('hex')}`;
    const env = { NODE_EXTRA_CA_CERTS: certs.caFile, OPENCLAW_LOG_LEVEL: 'info' };
    const gateway = await GatewayProcess.start({ redisUrl: redis.url, replicaId: 'tls-gw', keyPrefix, env });
    const worker = await WorkerProcess.start({ redisUrl: redis.url, replicaId: 'tls-wk', keyPrefix, env });
    try {
      expect(byMsg(gateway.logRecords(), 'gateway ready')).toMatchObject([{ redis: redis.url }]);
      expect((await fetch(`${gateway.httpUrl}/readyz`)).status).toBe(200);
      const workerReady = await fetch(`${worker.httpUrl}/readyz`);
      expect(workerReady.status).toBe(200);
      expect(await workerReady.json()).toMatchObject({ ready: true, redis: true });
      // Every connection of both processes is on this server, which has no plaintext port.
      expect(await clientNames(redis, ca)).toEqual(
        expect.arrayContaining([
          'tls-gw:cmd',
          'tls-gw:sub',
          'tls-gw:queue',
          'tls-wk:cmd',
          'tls-wk:sub',
          'tls-wk:queue',
          'tls-wk:bull',
        ]),
      );

      const agent = await startAgent(gateway.url, { name: 'tls-echo' });
      const caller = await TestSocket.open(gateway.url);
      expect(
        await caller.request({ action: 'coordinator', id: 'sync', agent: 'tls-echo', task: 't', data: { n: 1 } }),
      ).toMatchObject({ ok: true, result: { status: 'completed', output: { echo: { n: 1 }, by: 'tls-echo' } } });

      const taskId = await submitAsync(caller, { agent: 'tls-echo', task: 't', data: { n: 2 } });
      const statuses = await taskStatuses(caller, taskId);
      expect(statuses.map((s) => s.status)).toEqual(['submitted', 'working', 'completed']);
      expect(statuses[2]).toMatchObject({ output: { echo: { n: 2 }, by: 'tls-echo' }, attempt: 1 });
      // The worker ran it (BullMQ over TLS). It counts the run once the job is done, just after the
      // agent's answer has gone out to the caller.
      await waitFor(
        async () =>
          (await (await fetch(`${worker.httpUrl}/metrics`)).text()).includes(
            'openclaw_jobs_total{kind="task",outcome="completed"} 1\n',
          ),
        { what: 'the worker to count one completed task' },
      );
      await Promise.all([caller.close(), agent.close()]);
    } finally {
      await Promise.allSettled([gateway.stop(), worker.stop()]);
    }
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(await worker.exited).toEqual({ code: 0, signal: null });
  });

  it('refuses to start a replica that does not trust the CA, or that speaks plaintext, and says why', async () => {
    const [untrusting, plaintext] = await Promise.all([
      failedReplica(redis.url, { NODE_EXTRA_CA_CERTS: undefined }),
      failedReplica(redis.url.replace(/^rediss:/, 'redis:'), { NODE_EXTRA_CA_CERTS: certs.caFile }),
    ]);

    // Without the CA: exit 1 after the start-up deadline. The fatal line names the certificate
    // problem, and so do the warnings before it, once per connection.
    expect(await untrusting.exited).toEqual({ code: 1, signal: null });
    const records = untrusting.logRecords();
    expect(byMsg(records, 'gateway ready')).toEqual([]);
    expect(byMsg(records, 'gateway failed to start')).toMatchObject([
      {
        level: 60,
        err: `cannot reach Redis at ${redis.url} within 2 s (last error: self-signed certificate in certificate chain)`,
      },
    ]);
    const id = untrusting.replicaId;
    expect(
      byMsg(records, 'redis connection error')
        .map((r) => `${r.redis}: ${r.err}`)
        .sort(),
    ).toEqual(
      [`${id}:cmd`, `${id}:queue`, `${id}:sub`].map((name) => `${name}: self-signed certificate in certificate chain`),
    );

    // Plaintext against the TLS port: Redis drops the connection, and the replica never gets ready.
    expect(await plaintext.exited).toEqual({ code: 1, signal: null });
    expect(byMsg(plaintext.logRecords(), 'gateway failed to start')).toMatchObject([
      {
        level: 60,
        err: expect.stringMatching(
          new RegExp(
            `^cannot reach Redis at ${redis.url.replace(/^rediss:/, 'redis:')} within 2 s \\(last error: .+\\)$`,
          ),
        ),
      },
    ]);
  });
});
