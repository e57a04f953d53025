import { type EnqueueOptions, RedisKeys, silentLogger, TASK_QUEUE_NAME, TaskQueue } from '@openclaw/core';
import { Worker } from 'bullmq';
import Redis from 'ioredis';
import { RedisServerProcess } from '../helpers/redis-server';
import { waitFor } from '../helpers/wait';

/** The task queue's handling of jobs that a worker still holds, against a real Redis and BullMQ worker. */
describe('TaskQueue', () => {
  let redis: RedisServerProcess;
  let client: Redis;
  let workerConnection: Redis;
  const keys = new RedisKeys('tq');
  const options: EnqueueOptions = { kind: 'task', attempts: 1, backoffMs: 10, retentionMs: 60_000 };

  beforeAll(async () => {
    redis = await RedisServerProcess.start();
    client = new Redis(redis.url, { maxRetriesPerRequest: null });
    workerConnection = new Redis(redis.url, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    client.disconnect();
    workerConnection.disconnect();
    await redis.stop();
  });

  it('refuses to requeue a job a worker still holds, and requeues it once the worker lets go', async () => {
    const queue = new TaskQueue(client, keys, silentLogger());
    const runs: string[] = [];
    let letGo: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    const worker = new Worker(
      TASK_QUEUE_NAME,
      async (job) => {
        runs.push(job.id!);
        if (runs.length === 1) await held;
        return 'done';
      },
      { connection: workerConnection, prefix: keys.queuePrefix(), removeOnComplete: { count: 0 } },
    );
    try {
      await queue.add('t1', options);
      await waitFor(() => runs.length === 1, { what: 'the first run' });
      expect(await queue.state('t1')).toBe('active');
      // Left as it was, the job would be ended by its worker a moment later, and the new run with it.
      await expect(queue.requeue('t1', options)).rejects.toMatchObject({ code: 'CONFLICT', retryable: true });
      expect(await queue.released('t1', 50)).toBe('active');

      const released = queue.released('t1', 5000);
      letGo();
      expect(await released).toBe('missing');
      await queue.requeue('t1', options);
      await waitFor(() => runs.length === 2, { what: 'the run after the requeue' });
      expect(runs).toEqual(['t1', 't1']);
    } finally {
      await worker.close();
      await queue.close();
    }
  });
});
