import { AgentRegistry, RedisKeys, silentLogger } from '@openclaw/core';
import Redis from 'ioredis';
import { RedisServerProcess } from '../helpers/redis-server';
import { delay, waitFor } from '../helpers/wait';

/** The registry's Lua scripts against a real Redis. */
describe('AgentRegistry', () => {
  let redis: RedisServerProcess;
  let client: Redis;
  const keys = new RedisKeys('reg');
  /** Every registry made, closed after each test even if it fails (its heartbeat timers would keep running). */
  const registries: AgentRegistry[] = [];
  const registry = (replicaId: string, presenceTtlMs = 5000) => {
    const made = new AgentRegistry({ redis: client, keys, replicaId, presenceTtlMs, logger: silentLogger() });
    registries.push(made);
    return made;
  };

  beforeAll(async () => {
    redis = await RedisServerProcess.start();
    client = new Redis(redis.url, { lazyConnect: true });
    await client.connect();
  });
  afterEach(async () => {
    await Promise.all(registries.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    client.disconnect();
    await redis.stop();
  });
  beforeEach(async () => {
    await client.flushall(); // our own redis-server, started above
  });

  it('picks the instance with the least in-flight work and never exceeds concurrency', async () => {
    const r1 = registry('r1');
    const r2 = registry('r2');
    await Promise.all([r1.start(), r2.start()]);
    await r1.registerInstance({ instanceId: 'i1', agent: 'w', tasks: [], concurrency: 2 });
    await r2.registerInstance({ instanceId: 'i2', agent: 'w', tasks: [], concurrency: 2 });
    const picks: string[] = [];
    for (let i = 0; i < 4; i++) {
      const p = await r1.pick('w', 't', `task-${i}`, 10_000);
      expect(p.kind).toBe('instance');
      picks.push((p as { instanceId: string }).instanceId);
    }
    expect(picks.sort()).toEqual(['i1', 'i1', 'i2', 'i2']);
    // Least in-flight: after the first two picks, both are at 1 (never one at 2 and one at 0).
    expect(await r1.pick('w', 't', 'task-4', 10_000)).toEqual({ kind: 'busy', instances: 2 });
    await r1.release('i2', 'task-1');
    await r1.release('i2', 'task-3');
    await r1.release('i2', 'task-0');
    const next = await r1.pick('w', 't', 'task-5', 10_000);
    expect(next).toEqual({ kind: 'instance', instanceId: 'i2', replicaId: 'r2' });
    await Promise.all([r1.close(), r2.close()]);
  });

  it('spreads ties between idle instances', async () => {
    const r1 = registry('r1');
    await r1.start();
    for (const id of ['a', 'b', 'c'])
      await r1.registerInstance({ instanceId: id, agent: 'idle', tasks: [], concurrency: 100 });
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const p = (await r1.pick('idle', 't', `t${i}`, 10_000)) as { instanceId: string };
      seen.add(p.instanceId);
      await r1.release(p.instanceId, `t${i}`);
    }
    expect([...seen].sort()).toEqual(['a', 'b', 'c']);
    await r1.close();
  });

  it('frees a reservation whose release was lost once it expires', async () => {
    const r1 = registry('r1');
    await r1.start();
    await r1.registerInstance({ instanceId: 'solo', agent: 'one', tasks: [], concurrency: 1 });
    expect((await r1.pick('one', 't', 'lost', 200)).kind).toBe('instance');
    expect((await r1.pick('one', 't', 'second', 200)).kind).toBe('busy');
    // The lost reservation's 200 ms must run out: time has to pass.
    await delay(300);
    expect((await r1.pick('one', 't', 'third', 200)).kind).toBe('instance');
    await r1.close();
  });

  it('routes by task name and falls back to an HTTP agent of the same name', async () => {
    const r1 = registry('r1');
    await r1.start();
    await r1.registerInstance({ instanceId: 'x', agent: 'mixed', tasks: ['summarize'], concurrency: 1 });
    expect(await r1.pick('mixed', 'translate', 't1', 1000)).toEqual({ kind: 'no-task', instances: 1 });
    expect(await r1.pick('nobody', 't', 't2', 1000)).toEqual({ kind: 'none' });
    await r1.registerHttpAgent({ name: 'web', url: 'http://agent.example/run', tasks: [], timeoutMs: 5000 });
    expect(await r1.pick('web', 'anything', 't3', 1000)).toEqual({
      kind: 'http',
      url: 'http://agent.example/run',
      timeoutMs: 5000,
    });
    expect(await r1.removeHttpAgent('web')).toBe(true);
    expect(await r1.removeHttpAgent('web')).toBe(false);
    await r1.close();
  });

  it('ignores a dead replica at once and sweeps its instances away', async () => {
    const live = registry('live', 1000);
    // A long TTL: its next heartbeat (TTL/5) cannot undo the simulated crash during the test.
    const dead = registry('dead', 60_000);
    await Promise.all([live.start(), dead.start()]);
    await dead.registerInstance({ instanceId: 'ghost', agent: 'haunt', tasks: [], concurrency: 1 });
    expect((await live.list()).map((a) => a.name)).toEqual(['haunt']);
    // Simulate a crash: the heartbeat key vanishes and nothing cleans up.
    await client.del(keys.replicaAlive('dead'));
    expect(await live.list()).toEqual([]);
    // Not routed to; reported as registered but unreachable until swept, then unknown.
    expect(await live.pick('haunt', 't', 'x', 1000)).toEqual({ kind: 'unreachable', instances: 1 });
    expect(await live.sweep()).toBe(1);
    expect(await live.pick('haunt', 't', 'x', 1000)).toEqual({ kind: 'none' });
    expect(await client.exists(keys.instance('ghost'), keys.agentInstances('haunt'))).toBe(0);
    expect(await client.sismember(keys.agents(), 'haunt')).toBe(0);
    await Promise.all([live.close(), dead.close()]);
  });

  it('registers its instances again when its heartbeat key was lost', async () => {
    const r1 = registry('phoenix', 1000);
    await r1.start();
    await r1.registerInstance({ instanceId: 'p1', agent: 'bird', tasks: [], concurrency: 1 });
    await client.flushall(); // as after a Redis restart without persistence
    // The next heartbeat (every TTL/5) notices and writes everything back.
    await waitFor(async () => (await r1.list()).length > 0, { what: 'the instances written back', timeoutMs: 3_000 });
    expect((await r1.list()).map((a) => a.name)).toEqual(['bird']);
    await r1.close();
  });
});
