import { AgentRegistry, RedisKeys, silentLogger } from '@openclaw/core';
import Redis from 'ioredis';
import { RedisServerProcess } from '../helpers/redis-server';
import { waitFor } from '../helpers/wait';

/** The registry's scripts and routing copies against a real Redis. */
describe('AgentRegistry', () => {
  let redis: RedisServerProcess;
  let client: Redis;
  const keys = new RedisKeys('reg');
  /** Every registry made, closed after each test even if it fails (its heartbeat timers would keep running). */
  const registries: AgentRegistry[] = [];
  const registry = (replicaId: string, presenceTtlMs = 5000) => {
    const made = new AgentRegistry({
      redis: client,
      keys,
      replicaId,
      presenceTtlMs,
      logger: silentLogger(),
      // The bus's broadcast, in one process: every registry hears of every change.
      announce: () => {
        for (const r of registries) r.changed();
      },
      checkIntervalMs: 100,
    });
    registries.push(made);
    return made;
  };
  const started = async (...made: AgentRegistry[]) => {
    await Promise.all(made.map((r) => r.start()));
    await Promise.all(made.map((r) => r.startRouting()));
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

  it("picks the instance with the least of the caller's load, never one at its concurrency", async () => {
    const r1 = registry('r1');
    const r2 = registry('r2');
    await started(r1, r2);
    await r1.registerInstance({ instanceId: 'i1', agent: 'w', tasks: [], concurrency: 2 });
    await r2.registerInstance({ instanceId: 'i2', agent: 'w', tasks: [], concurrency: 2 });
    const load = new Map<string, number>();
    const picks: string[] = [];
    for (let i = 0; i < 4; i++) {
      const p = await r1.pick('w', 't', { load: (id) => load.get(id) ?? 0 });
      expect(p.kind).toBe('instance');
      const id = (p as { instanceId: string }).instanceId;
      load.set(id, (load.get(id) ?? 0) + 1);
      picks.push(id);
    }
    expect(picks.sort()).toEqual(['i1', 'i1', 'i2', 'i2']);
    expect(await r1.pick('w', 't', { load: (id) => load.get(id) ?? 0 })).toEqual({ kind: 'busy', instances: 2 });
    load.set('i2', 1);
    expect(await r1.pick('w', 't', { load: (id) => load.get(id) ?? 0 })).toEqual({
      kind: 'instance',
      instanceId: 'i2',
      replicaId: 'r2',
    });
    // An instance that refused the call is not picked again.
    expect(await r1.pick('w', 't', { exclude: new Set(['i2']), load: (id) => load.get(id) ?? 0 })).toEqual({
      kind: 'busy',
      instances: 2,
    });
  });

  it('spreads ties between idle instances', async () => {
    const r1 = registry('r1');
    await started(r1);
    for (const id of ['a', 'b', 'c'])
      await r1.registerInstance({ instanceId: id, agent: 'idle', tasks: [], concurrency: 100 });
    // New instances of a known agent are routed to once the copy has loaded them (on the announcement).
    await r1.routing.table.refresh();
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const p = (await r1.pick('idle', 't')) as { instanceId: string };
      seen.add(p.instanceId);
    }
    expect([...seen].sort()).toEqual(['a', 'b', 'c']);
  });

  it('finds an agent registered a moment ago by a process it has not heard from', async () => {
    const r1 = registry('r1');
    await started(r1);
    expect(await r1.pick('late', 't')).toEqual({ kind: 'none' });
    // Written by another process whose announcement has not arrived (none is sent here).
    const other = new AgentRegistry({
      redis: client,
      keys,
      replicaId: 'r2',
      presenceTtlMs: 5000,
      logger: silentLogger(),
      announce: () => undefined,
    });
    try {
      await other.start();
      await other.registerInstance({ instanceId: 'fresh', agent: 'late', tasks: [], concurrency: 1 });
      // The copy finds nothing, sees the registry's version moved, and loads it again at once.
      expect(await r1.pick('late', 't')).toEqual({ kind: 'instance', instanceId: 'fresh', replicaId: 'r2' });
      await other.unregisterInstance('fresh');
      // An instance gone: the origin's next pick, told to load afresh, no longer finds it.
      expect(await r1.pick('late', 't', { fresh: true })).toEqual({ kind: 'none' });
    } finally {
      await other.close();
    }
  });

  it('charges cluster-wide limits across processes without ever going over them', async () => {
    const r1 = registry('r1');
    const r2 = registry('r2');
    await started(r1, r2);
    await r1.registerInstance({ instanceId: 'lim', agent: 'limited', tasks: [], concurrency: 100 });
    // 3 calls of burst, refilled at 1 a second: leased one token at a time, so exact across both.
    const limits = {
      principal: { id: 'alice', rate: 1, burst: 3 },
      tenant: { id: 'default', rate: 0, burst: 0 },
    };
    const kinds: string[] = [];
    for (let i = 0; i < 6; i++) kinds.push((await (i % 2 === 0 ? r1 : r2).pick('limited', 't', { limits })).kind);
    expect(kinds.filter((k) => k === 'instance')).toHaveLength(3);
    expect(kinds.slice(3)).toEqual(['rate-limited', 'rate-limited', 'rate-limited']);
    const refused = (await r1.pick('limited', 't', { limits })) as {
      kind: string;
      scope: string;
      retryAfterMs: number;
    };
    expect(refused).toMatchObject({ kind: 'rate-limited', scope: 'principal' });
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(1000);
    // A high limit is leased in batches: 200 calls take a handful of round trips, not 200.
    const high = {
      principal: { id: 'bob', rate: 10_000, burst: 10_000 },
      tenant: { id: 'default', rate: 0, burst: 0 },
    };
    await client.config('RESETSTAT');
    for (let i = 0; i < 200; i++) expect((await r1.pick('limited', 't', { limits: high })).kind).toBe('instance');
    const stats = await client.info('commandstats');
    const evals = [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(evals).toBeLessThanOrEqual(2);
  });

  it('routes by task name and falls back to an HTTP agent of the same name', async () => {
    const r1 = registry('r1');
    await started(r1);
    await r1.registerInstance({ instanceId: 'x', agent: 'mixed', tasks: ['summarize'], concurrency: 1 });
    expect(await r1.pick('mixed', 'translate')).toEqual({ kind: 'no-task', instances: 1 });
    expect(await r1.pick('nobody', 't')).toEqual({ kind: 'none' });
    await r1.registerHttpAgent({ name: 'web', url: 'http://agent.example/run', tasks: [], timeoutMs: 5000 });
    expect(await r1.pick('web', 'anything')).toEqual({
      kind: 'http',
      url: 'http://agent.example/run',
      timeoutMs: 5000,
    });
    expect(await r1.removeHttpAgent('web')).toBe(true);
    expect(await r1.removeHttpAgent('web')).toBe(false);
    await r1.close();
  });

  it('sweeps no replica while its own heartbeat could not be written (Redis stalled, as in a failover), then only after a grace', async () => {
    // Heartbeats every 400 ms; a gap of more than 800 ms between two of its own is a stall.
    const live = registry('live', 2000);
    // A long TTL: it writes no heartbeat of its own during the test.
    const other = registry('other', 60_000);
    await started(live, other);
    await other.registerInstance({ instanceId: 'ghost', agent: 'haunt', tasks: [], concurrency: 1 });
    // Its heartbeat ends during the stall below.
    await client.set(keys.replicaAlive('other'), '1', 'PX', 2500);
    const pauser = new Redis(redis.url);
    try {
      // Every command waits 3 s, the connections stay up: what a master failing over looks like.
      await pauser.call('CLIENT', 'PAUSE', '3000', 'ALL');
      const resumedAt = Date.now() + 3000;
      await waitFor(() => Date.now() >= resumedAt + 800, { what: 'the stall to end', timeoutMs: 10_000 });
    } finally {
      pauser.disconnect();
    }
    // Other replicas could not write their heartbeats either: none is taken for dead yet.
    expect(await client.exists(keys.instance('ghost'))).toBe(1);
    // One presence TTL after its own heartbeat came back, a replica still silent is dead.
    await waitFor(async () => (await client.exists(keys.instance('ghost'))) === 0, {
      what: 'the silent replica swept after the grace',
      timeoutMs: 10_000,
    });
  });

  it('stops routing to a dead replica within a check interval and sweeps its instances away', async () => {
    const live = registry('live', 1000);
    // A long TTL: its next heartbeat (TTL/5) cannot undo the simulated crash during the test.
    const dead = registry('dead', 60_000);
    await started(live, dead);
    await dead.registerInstance({ instanceId: 'ghost', agent: 'haunt', tasks: [], concurrency: 1 });
    expect((await live.list()).map((a) => a.name)).toEqual(['haunt']);
    // Simulate a crash: the heartbeat key vanishes and nothing cleans up.
    await client.del(keys.replicaAlive('dead'));
    expect(await live.list()).toEqual([]);
    // Not routed to once the copy's check (every 100 ms here) sees the heartbeat gone; reported as
    // registered but unreachable until swept, then unknown.
    await waitFor(async () => (await live.pick('haunt', 't')).kind === 'unreachable', {
      what: 'the dead replica out of routing',
      timeoutMs: 2_000,
    });
    expect(await live.pick('haunt', 't')).toEqual({ kind: 'unreachable', instances: 1 });
    expect(await live.sweep()).toBe(1);
    expect(await live.pick('haunt', 't')).toEqual({ kind: 'none' });
    expect(await client.exists(keys.instance('ghost'), keys.agentInstances('haunt'))).toBe(0);
    expect(await client.sismember(keys.agents(), 'haunt')).toBe(0);
    await Promise.all([live.close(), dead.close()]);
  });

  it('registers its instances again when its heartbeat key was lost', async () => {
    const r1 = registry('phoenix', 1000);
    await started(r1);
    await r1.registerInstance({ instanceId: 'p1', agent: 'bird', tasks: [], concurrency: 1 });
    await client.flushall(); // as after a Redis restart without persistence
    // The next heartbeat (every TTL/5) notices and writes everything back.
    await waitFor(async () => (await r1.list()).length > 0, { what: 'the instances written back', timeoutMs: 3_000 });
    expect((await r1.list()).map((a) => a.name)).toEqual(['bird']);
    await r1.close();
  });
});
