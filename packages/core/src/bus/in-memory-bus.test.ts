import type { BusMessage } from './bus-message';
import { InMemoryBusNetwork } from './in-memory-bus';

describe('InMemoryBus', () => {
  const next = () => new Promise((resolve) => setImmediate(resolve));

  it('keeps receiving after a handler fails, and cuts a partitioned replica off both ways until restored', async () => {
    const network = new InMemoryBusNetwork();
    const a = network.bus('A');
    const b = network.bus('B');
    await Promise.all([a.start(), b.start()]);
    const got: BusMessage[] = [];
    b.onMessage((message) => {
      got.push(message);
      if (got.length === 1) throw new Error('the first one fails');
    });
    const events: string[] = [];
    b.onSubscriptionLost(() => events.push('lost'));
    b.onResubscribed(() => events.push('back'));

    expect(await a.send('B', { type: 'task.cancel-request', taskId: 't1' })).toBe(1);
    expect(await a.send('B', { type: 'task.cancel-request', taskId: 't2' })).toBe(1);
    await next();
    expect(got.map((m) => (m as { taskId: string }).taskId)).toEqual(['t1', 't2']);
    expect(got[0]).toMatchObject({ sender: 'A', type: 'task.cancel-request' });

    network.partition('B');
    expect(await a.send('B', { type: 'task.cancel-request', taskId: 't3' })).toBe(0);
    await expect(b.send('A', { type: 'task.cancel-request', taskId: 'x' })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    expect(b.healthy()).toBe(false);
    network.restore('B');
    expect(b.healthy()).toBe(true);
    expect(events).toEqual(['lost', 'back']);
    // Nothing sent while it was cut off arrives later.
    await next();
    expect(got).toHaveLength(2);
  });

  it('carries topics to every bus listening, only while it listens and is reachable', async () => {
    const network = new InMemoryBusNetwork();
    const a = network.bus('A');
    const b = network.bus('B');
    const c = network.bus('C');
    await Promise.all([a.start(), b.start(), c.start()]);
    const heard: string[] = [];
    b.topics.onMessage((topic, json) => heard.push(`B ${topic} ${json}`));
    c.topics.onMessage((topic, json) => heard.push(`C ${topic} ${json}`));
    await b.topics.listen('t1');
    await c.topics.listen('t1', 't2');
    expect(await a.topics.publish('t1', '1')).toBe(2);
    expect(await a.topics.publish('t2', '2')).toBe(1);
    await next();
    expect(heard.sort()).toEqual(['B t1 1', 'C t1 1', 'C t2 2']);
    b.topics.stop('t1');
    network.partition('C');
    expect(await a.topics.publish('t1', '3')).toBe(0);
    await expect(c.topics.publish('t1', 'x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    network.restore('C');
    await c.close();
    expect(await a.topics.publish('t2', '4')).toBe(0);
    await next();
    expect(heard).toHaveLength(3);
  });
});
