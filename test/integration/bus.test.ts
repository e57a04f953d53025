import { type BusMessage, RedisClusterBus, RedisKeys, silentLogger } from '@openclaw/core';
import Redis from 'ioredis';
import { RedisServerProcess } from '../helpers/redis-server';
import { waitFor } from '../helpers/wait';

/** The Redis cluster bus against a real Redis. */
describe('RedisClusterBus', () => {
  let redis: RedisServerProcess;
  const clients: Redis[] = [];
  /** Every bus started, closed after the tests even if one fails (its canary timer would keep running). */
  const buses: RedisClusterBus[] = [];
  const keys = new RedisKeys('bus');
  const client = async (): Promise<Redis> => {
    const c = new Redis(redis.url, { lazyConnect: true });
    await c.connect();
    clients.push(c);
    return c;
  };
  const bus = async (replicaId: string, canaryIntervalMs = 100) => {
    const b = new RedisClusterBus({
      replicaId,
      keys,
      publisher: await client(),
      subscriber: await client(),
      logger: silentLogger(),
      canaryIntervalMs,
    });
    buses.push(b);
    await b.start();
    return b;
  };

  beforeAll(async () => {
    redis = await RedisServerProcess.start();
  });
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close()));
    for (const c of clients) c.disconnect();
    await redis.stop();
  });

  it('counts an inbox that keeps receiving as healthy while its canary is late, and as deaf once nothing arrives', async () => {
    const slow = await bus('slow');
    const other = await bus('other');
    // Its canaries stop coming back (as under heavy load, when they queue behind other traffic)...
    (slow as unknown as { sendCanary: () => void }).sendCanary = () => undefined;
    // ...while messages from another replica keep arriving.
    const sending = setInterval(() => void other.send('slow', { type: 'task.cancel-request', taskId: 't' }), 50);
    try {
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(slow.canaryAgeMs()).toBeGreaterThan(500);
      expect(slow.healthy()).toBe(true);
    } finally {
      clearInterval(sending);
    }
    // Nothing at all for three canary intervals: deaf.
    await waitFor(() => !slow.healthy(), { what: 'the silent inbox judged deaf', timeoutMs: 2_000, intervalMs: 20 });
  });

  it('delivers a message to exactly the addressed replica, stamped with sender, id, time and trace context', async () => {
    const a = await bus('a');
    const b = await bus('b');
    const c = await bus('c');
    const got: Record<string, BusMessage[]> = { a: [], b: [], c: [] };
    a.onMessage((m) => got.a!.push(m));
    b.onMessage((m) => got.b!.push(m));
    c.onMessage((m) => got.c!.push(m));
    const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    expect(await a.send('b', { type: 'task.cancel-request', taskId: 't1', traceparent: parent })).toBe(1);
    await waitFor(() => got.b!.length === 1, { what: 'b to receive' });
    expect(got.b![0]).toMatchObject({
      type: 'task.cancel-request',
      taskId: 't1',
      sender: 'a',
      id: expect.any(String),
      ts: expect.any(Number),
    });
    // Tracing is off here: the hop keeps the trace context it was given (no span is recorded).
    expect(got.b![0]!.traceparent).toBe(parent);
    expect(got.a).toEqual([]);
    expect(got.c).toEqual([]);
    expect(await a.send('nobody', { type: 'task.cancel-request', taskId: 't2' })).toBe(0);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  /**
   * Two buses, the ids of the cancel requests the second receives, and what a plain subscriber of its
   * inbox sees: each PUBLISH as one message.
   */
  const batchedPair = async (from: string, to: string) => {
    const a = await bus(from);
    const b = await bus(to);
    const got: string[] = [];
    b.onMessage((m) => {
      if (m.type === 'task.cancel-request') got.push(m.taskId);
    });
    const listener = await client();
    const publishes: string[] = [];
    listener.on('message', (channel: string, raw: string) => {
      if (channel === keys.inbox(to)) publishes.push(raw);
    });
    await listener.subscribe(keys.inbox(to));
    return { a, b, got, listener, publishes };
  };

  it('publishes the messages for one inbox sent in one turn together, delivered in order', async () => {
    const { a, b, got, listener, publishes } = await batchedPair('batcher', 'batched');
    try {
      const sent = Array.from({ length: 50 }, (_, i) =>
        a.send('batched', { type: 'task.cancel-request', taskId: `t${i}` }),
      );
      expect(await Promise.all(sent)).toEqual(Array(50).fill(2));
      await waitFor(() => got.length === 50, { what: 'the 50 messages' });
      expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `t${i}`));
      await waitFor(() => publishes.some((p) => p.startsWith('[')), { what: 'the batch at the plain subscriber' });
      const batches = publishes.filter((p) => p.includes('task.cancel-request'));
      expect(batches).toHaveLength(1);
      expect(JSON.parse(batches[0]!)).toHaveLength(50);
      expect(a.stats.sent.get('task.cancel-request')).toBe(50);
    } finally {
      await listener.unsubscribe();
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('publishes the messages of one event-loop iteration together, even when sent from separate I/O callbacks', async () => {
    const { a, b, got, listener, publishes } = await batchedPair('iteration-batcher', 'iteration-batched');
    try {
      // Callbacks of one phase of the loop, as frames read from several sockets in one wake-up are:
      // the ticks and microtasks between them run, and the batch still waits for the last one.
      const sent = await new Promise<number[]>((resolve) => {
        const results: Promise<number>[] = [];
        for (let i = 0; i < 3; i++) {
          setImmediate(() => {
            results.push(a.send('iteration-batched', { type: 'task.cancel-request', taskId: `i${i}` }));
            if (results.length === 3) void Promise.all(results).then(resolve);
          });
        }
      });
      expect(sent).toEqual([2, 2, 2]);
      await waitFor(() => got.length === 3, { what: 'the 3 messages' });
      expect(got).toEqual(['i0', 'i1', 'i2']);
      await waitFor(() => publishes.length > 0, { what: 'the publish at the plain subscriber' });
      expect(publishes).toHaveLength(1);
      expect(JSON.parse(publishes[0]!)).toHaveLength(3);
    } finally {
      await listener.unsubscribe();
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('drops invalid envelopes without harm and keeps receiving', async () => {
    const a = await bus('valid');
    const got: BusMessage[] = [];
    a.onMessage((m) => got.push(m));
    const raw = await client();
    await raw.publish(keys.inbox('valid'), 'not json');
    await raw.publish(keys.inbox('valid'), JSON.stringify({ type: 'task.dispatch', taskId: 1 }));
    await raw.publish(keys.inbox('valid'), JSON.stringify({ type: 'nonsense' }));
    await waitFor(() => a.stats.dropped === 3, { what: 'three dropped messages' });
    await a.send('valid', { type: 'task.cancel-request', taskId: 'ok' });
    await waitFor(() => got.length === 1, { what: 'the valid message' });
    await a.close();
  });

  it('turns unhealthy when its subscriber silently stops receiving (the canary stops arriving), then subscribes again by itself', async () => {
    const subscriber = await client();
    const b = new RedisClusterBus({
      replicaId: 'quiet',
      keys,
      publisher: await client(),
      subscriber,
      logger: silentLogger(),
      canaryIntervalMs: 100,
    });
    buses.push(b);
    await b.start();
    await waitFor(() => b.healthy(), { what: 'the bus to be healthy' });
    // The connection stays up and "ready", but no longer receives the inbox: the silent failure.
    await subscriber.unsubscribe(keys.inbox('quiet'));
    expect(subscriber.status).toBe('ready');
    await waitFor(() => !b.healthy(), { what: 'the canary to notice', timeoutMs: 5000 });
    await waitFor(() => b.healthy(), { what: 'the bus to subscribe again by itself', timeoutMs: 5000 });
    await b.close();
  });

  it('carries topics beside the inbox: to every process listening, only while it listens, the inbox untouched', async () => {
    const a = await bus('topic-a', 1000);
    const b = await bus('topic-b', 1000);
    const c = await bus('topic-c', 1000);
    const heard: string[] = [];
    const inbox: BusMessage[] = [];
    b.onMessage((message) => inbox.push(message));
    for (const [name, x] of [
      ['b', b],
      ['c', c],
    ] as const)
      x.topics.onMessage((topic, json) => heard.push(`${name} ${topic} ${json}`));
    const failing = () => {
      throw new Error('a failing handler does not stop the others');
    };
    b.topics.onMessage(failing);
    await b.topics.listen('events:x', 'events:y');
    await c.topics.listen('events:x');
    expect(await a.topics.publish('events:x', '{"n":1}')).toBe(2);
    expect(await a.topics.publish('events:y', '{"n":2}')).toBe(1);
    await waitFor(() => heard.length === 3, { what: 'the topic messages' });
    expect(heard.sort()).toEqual(['b events:x {"n":1}', 'b events:y {"n":2}', 'c events:x {"n":1}']);
    // A topic's messages never reach the inbox handler, and the inbox's never reach topic handlers.
    await a.send('topic-b', { type: 'task.cancel-request', taskId: 't' });
    await waitFor(() => inbox.length === 1, { what: 'the inbox message' });
    expect(heard).toHaveLength(3);
    b.topics.stop('events:x');
    b.topics.offMessage(failing);
    await waitFor(async () => (await a.topics.publish('events:x', '{"n":3}')) === 1, { what: 'b to stop listening' });
    await waitFor(() => heard.includes('c events:x {"n":3}'), { what: 'c still listening' });
    expect(heard.filter((h) => h.startsWith('b events:x'))).toHaveLength(1);
  });
});
