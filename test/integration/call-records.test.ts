import { CallRecords, RedisKeys } from '@openclaw/core';
import Redis from 'ioredis';
import { RedisMonitor } from '../helpers/redis-monitor';
import { RedisServerProcess } from '../helpers/redis-server';
import { waitFor } from '../helpers/wait';

/** Records of sync calls: batched writes into minute buckets, read from any process. */
describe('CallRecords', () => {
  let redis: RedisServerProcess;
  let writerConnection: Redis;
  let readerConnection: Redis;
  const keys = new RedisKeys('cr');

  beforeAll(async () => {
    redis = await RedisServerProcess.start();
    writerConnection = new Redis(redis.url);
    readerConnection = new Redis(redis.url);
  });
  afterAll(async () => {
    writerConnection.disconnect();
    readerConnection.disconnect();
    await redis.stop();
  });

  const record = (taskId: string, createdAt: number) => ({
    taskId,
    agent: 'echo',
    task: 't',
    status: 'working' as const,
    createdAt,
    principal: 'alice',
    tenant: 'default',
    origin: 'A',
  });

  it('writes the calls of one turn in one HSET per bucket, once per call, and any process reads them', async () => {
    const writer = new CallRecords(writerConnection, keys);
    const reader = new CallRecords(readerConnection, keys);
    await writerConnection.config('RESETSTAT');
    const now = Date.now();
    // The same minute and, by the ids' ends, the same shard ('...-000000000000').
    const ids = Array.from({ length: 20 }, (_, i) => newIdAt(now, i));
    for (const id of ids) void writer.create(record(id, now));
    for (const id of ids.slice(0, 10)) void writer.finish(id, 'completed', { output: { id } });
    await waitFor(async () => (await reader.get(ids[19]!)) !== undefined, { what: 'the batch written' });
    const stats = await writerConnection.info('commandstats');
    const calls = (command: string) =>
      Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
    expect(calls('hset')).toBeLessThanOrEqual(4);
    expect(calls('pexpireat')).toBeLessThanOrEqual(4);
    expect(await reader.get(ids[0]!)).toMatchObject({ status: 'completed', output: { id: ids[0] } });
    expect(await reader.get(ids[15]!)).toMatchObject({ status: 'working', principal: 'alice', origin: 'A' });
  });

  it('finds a call whose id was made in one minute and whose start came in the next', async () => {
    const writer = new CallRecords(writerConnection, keys);
    const reader = new CallRecords(readerConnection, keys);
    // The id at the last millisecond of a minute; the call routed (and its record started) 150 ms
    // later, in the next minute, as on a loaded replica.
    const minuteEnd = (Math.floor(Date.now() / 60_000) + 1) * 60_000 - 1;
    const id = newIdAt(minuteEnd, 900);
    void writer.create(record(id, minuteEnd + 150));
    void writer.finish(id, 'completed', { output: 'late' });
    await waitFor(async () => (await reader.get(id)) !== undefined, { what: 'the record found', timeoutMs: 2_000 });
    expect(await reader.get(id)).toMatchObject({ status: 'completed', output: 'late' });
  });

  it('writes calls that end one per turn, before their starts were written, together in one HSET', async () => {
    const writer = new CallRecords(writerConnection, keys);
    const reader = new CallRecords(readerConnection, keys);
    await writerConnection.config('RESETSTAT');
    const now = Date.now();
    const ids = Array.from({ length: 10 }, (_, i) => newIdAt(now, 100 + i));
    // One call at a time, each started and ended in a turn of its own (one call in flight).
    for (const id of ids) {
      void writer.create(record(id, now));
      void writer.finish(id, 'completed', { output: id });
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(async () => (await reader.get(ids[9]!))?.status === 'completed', { what: 'the calls written' });
    const stats = await writerConnection.info('commandstats');
    const hsets = Number(/^cmdstat_hset:calls=(\d+)/m.exec(stats)?.[1] ?? 0);
    expect(hsets).toBeLessThanOrEqual(2);
    for (const id of ids) expect(await reader.get(id)).toMatchObject({ status: 'completed', output: id });
  });

  it("keeps a bucket as long as its longest-lived record needs, never shortening another process's", async () => {
    await writerConnection.flushall();
    const writer = new CallRecords(writerConnection, keys, { ttlMs: 60_000 });
    const other = new CallRecords(readerConnection, keys, { ttlMs: 60_000 });
    const now = Date.now();
    const [ended, running, keyed] = [newIdAt(now, 1), newIdAt(now, 2), newIdAt(now, 3)];
    // Ended at once: kept a minute.
    void writer.create(record(ended, now), { deadline: now + 30_000, keyed: false });
    void writer.finish(ended, 'completed', { output: 1 });
    await waitFor(async () => (await other.get(ended)) !== undefined, { what: 'the ended record' });
    const bucket = keys.callRecords(Math.floor(now / 60_000), 0);
    const minute = await readerConnection.pttl(bucket);
    expect(minute).toBeGreaterThan(50_000);
    expect(minute).toBeLessThanOrEqual(80_000);
    // Still running with a deadline in half an hour: its bucket is kept until then, and a minute more.
    void other.create(record(running, now), { deadline: now + 1_800_000, keyed: false });
    await waitFor(async () => (await readerConnection.pttl(bucket)) > 1_800_000, { what: 'the bucket kept longer' });
    // The first process writing again (with its shorter need) does not shorten it.
    void writer.create(record(newIdAt(now, 4), now), { deadline: now, keyed: false });
    await waitFor(async () => (await other.get(newIdAt(now, 4))) !== undefined, { what: 'the next record' });
    expect(await readerConnection.pttl(bucket)).toBeGreaterThan(1_800_000);
    // A call with an idempotencyKey is kept as long as its key (an hour), apart.
    void writer.create(record(keyed, now), { deadline: now + 1000, keyed: true });
    void writer.finish(keyed, 'completed', { output: 'replayed' });
    await waitFor(async () => (await other.get(keyed))?.output === 'replayed', { what: 'the keyed record' });
    expect(await readerConnection.pttl(keys.callRecords(Math.floor(now / 60_000), 0, true))).toBeGreaterThan(3_500_000);
  });

  it('writes a call that ends within a moment once, and finds a call started a moment ago elsewhere', async () => {
    const writer = new CallRecords(writerConnection, keys);
    const other = new CallRecords(readerConnection, keys);
    const writes: string[] = [];
    const monitor = await RedisMonitor.open(redis.url, ([name, , ...fieldsAndValues]) => {
      if (name === 'hset') writes.push(fieldsAndValues.filter((_, i) => i % 2 === 0).join(','));
    });
    try {
      const now = Date.now();
      const quick = newIdAt(now, 7);
      void writer.create(record(quick, now), { deadline: now + 30_000, keyed: false });
      // The call ends a few ms later, before its started record went out.
      await new Promise((resolve) => setTimeout(resolve, 5));
      void writer.finish(quick, 'completed', { output: 'fast' });
      // Started on the writer a moment ago and still running: the other process finds it all the same.
      const running = newIdAt(Date.now(), 8);
      void writer.create(record(running, Date.now()), { deadline: Date.now() + 30_000, keyed: false });
      expect(await other.get(running)).toMatchObject({ status: 'working' });
      expect(await other.get(quick)).toMatchObject({ status: 'completed', output: 'fast' });
      await waitFor(() => writes.some((w) => w.split(',').includes(running)), { what: 'the running record written' });
      expect(writes.filter((w) => w.split(',').includes(quick))).toHaveLength(1);
    } finally {
      monitor.close();
    }
  });

  it('finds the record of a task id that names no time, and ends a record another process made', async () => {
    const writer = new CallRecords(writerConnection, keys);
    const other = new CallRecords(readerConnection, keys);
    void writer.create(record('my-own-id', Date.now()));
    await waitFor(async () => (await other.get('my-own-id')) !== undefined, { what: 'the record written' });
    const found = await other.get('my-own-id');
    await other.finish('my-own-id', 'canceled', { error: { code: 'CANCELED', message: 'x', retryable: false } }, found);
    // (A cancel is written elsewhere only when the call's own process is gone: a third one reads it.)
    const third = new CallRecords(readerConnection, keys);
    await waitFor(async () => (await third.get('my-own-id'))?.status === 'canceled', { what: 'the end written' });
    expect(await other.get('no-such-task')).toBeUndefined();
  });

  it('stores a record in about 120 bytes plus its output, and reads back every field it was given', async () => {
    await writerConnection.flushall();
    const writer = new CallRecords(writerConnection, keys);
    const reader = new CallRecords(readerConnection, keys);
    const now = Date.now();
    const [done, none, failed, running, legacy] = [1, 2, 3, 4, 5].map((n) => newIdAt(now, n)) as [
      string,
      string,
      string,
      string,
      string,
    ];
    const output = { text: 'x'.repeat(60), n: 1 };
    void writer.create({ ...record(done, now - 2), principal: 'key:3f2a9c1e0b7d4a65' });
    void writer.finish(done, 'completed', { output });
    void writer.create(record(none, now));
    void writer.finish(none, 'completed', { output: null });
    void writer.create(record(failed, now));
    const error = { code: 'TIMEOUT', message: 'the deadline passed', retryable: true };
    void writer.finish(failed, 'failed', { error });
    void writer.create(record(running, now));
    void writer.setHolder(running, 'B', 'instance-1');
    void writer.create(record(legacy, now));
    await waitFor(async () => (await reader.get(running))?.holder === 'B', { what: 'the records written' });

    const stored = (id: string) =>
      readerConnection.hget(keys.callRecords(Math.floor(now / 60_000), shardOfTest(id)), id) as Promise<string>;
    const doneRecord = await reader.get(done);
    expect(doneRecord).toMatchObject({
      taskId: done,
      agent: 'echo',
      task: 't',
      status: 'completed',
      createdAt: now - 2,
      principal: 'key:3f2a9c1e0b7d4a65',
      tenant: 'default',
      output,
    });
    expect(doneRecord!.updatedAt).toBeGreaterThanOrEqual(now - 2);
    // Where it ran is dropped once it has ended.
    expect(doneRecord).not.toHaveProperty('holder');
    const json = JSON.stringify(output).length;
    expect((await stored(done)).length - json).toBeLessThanOrEqual(70);
    expect(await reader.get(none)).toMatchObject({ status: 'completed', output: null });
    const failedRecord = await reader.get(failed);
    expect(failedRecord).toMatchObject({ status: 'failed', error });
    expect(failedRecord).not.toHaveProperty('output');
    expect(await reader.get(running)).toMatchObject({
      status: 'working',
      origin: 'A',
      holder: 'B',
      instanceId: 'instance-1',
    });

    // A record as earlier versions stored it (a JSON object) still reads.
    const old = { ...record(legacy, now), status: 'completed', updatedAt: now + 5, output: 7 };
    await writerConnection.hset(
      keys.callRecords(Math.floor(now / 60_000), shardOfTest(legacy)),
      legacy,
      JSON.stringify(old),
    );
    expect(await reader.get(legacy)).toEqual(old);
  });
});

/** The bucket shard of a task id, as the store computes it. */
function shardOfTest(taskId: string): number {
  let h = 0;
  for (let i = taskId.length - 1; i >= Math.max(0, taskId.length - 8); i--) h = (h * 31 + taskId.charCodeAt(i)) >>> 0;
  return h % 4;
}

/** A version 7 task id of a given time, made distinct by `n` in its random part. */
function newIdAt(at: number, n: number): string {
  const hex = at.toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8)}-7000-8${n.toString(16).padStart(3, '0')}-000000000000`;
}
