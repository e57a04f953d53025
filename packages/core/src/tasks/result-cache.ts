import { createHash } from 'node:crypto';
import { type AgentCacheSummary, GatewayError, type WireError } from '@openclaw/protocol';
import type { BusTopics } from '../bus/cluster-bus';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';

/** Which tasks of an agent are cacheable, and for how long (declared at `register`). */
export interface CachePolicy {
  tasks: string[];
  ttlMs: number;
}

/** How a cacheable call ended up being answered. */
export type CacheOutcome =
  | { kind: 'hit'; output: unknown }
  /** The same call was in flight elsewhere: its outcome, shared. */
  | { kind: 'shared'; output: unknown }
  /** This call is to reach the agent; `done` stores and shares its outcome. */
  | { kind: 'lead'; done: (outcome: { output: unknown; cacheable: boolean } | { error: GatewayError }) => void };

/** Counts, for the metrics. */
export interface CacheStats {
  hits: number;
  misses: number;
  /** Calls answered by an identical call in flight (single flight). */
  shared: number;
  stored: number;
}

type Counter = 'hits' | 'misses' | 'shared' | 'stored';
const COUNTERS: readonly Counter[] = ['hits', 'misses', 'shared', 'stored'];

/** How often a process adds its counters of each tenant to Redis. */
const STATS_FLUSH_MS = 2000;

/** How long a policy read from Redis is used before it is read again. */
const POLICY_MEMO_MS = 1000;
/** How often a call waiting for an identical call in flight looks whether it is still in flight. */
const FLIGHT_POLL_MS = 500;

/** JSON with object keys sorted at every level: equal data, equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.keys(value as Record<string, unknown>)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

/** Options of {@link ResultCache}. */
export interface ResultCacheOptions {
  redis: RedisClient;
  keys: RedisKeys;
  topics: BusTopics;
  logger: Logger;
}

/**
 * The result cache: successful outputs of cacheable tasks (an agent declares which, and for how
 * long, when it registers), per tenant, agent, task and canonical input. A call that finds an entry
 * is answered from it; identical calls in flight at once reach the agent once, on any replica
 * (single flight): the first takes a flight key in Redis and runs the call, the others wait for its
 * outcome, on the flight's channel (or, on the same replica, on its promise), and get its output or
 * its error. Entries of a tenant's agent live in one slot (`{cache:<tenant>:<agent>}`).
 */
export class ResultCache {
  readonly stats: CacheStats = { hits: 0, misses: 0, shared: 0, stored: 0 };
  private readonly policies = new Map<string, { policy: CachePolicy | undefined; at: number }>();
  /** Calls in flight on this replica, by entry key: waiters on the same replica join them. */
  private readonly local = new Map<string, Promise<{ output: unknown } | { error: WireError }>>();
  /** Counts not yet added to Redis: by tenant, then by field (`<counter>:<agent>`). */
  private unflushed = new Map<string, Map<string, number>>();
  private flushTimer: NodeJS.Timeout | undefined;
  /** Waiters for flights led by other replicas, by channel. */
  private readonly waiting = new Map<string, Set<(message: string) => void>>();

  private readonly onMessage = (channel: string, raw: string): void => {
    const waiters = this.waiting.get(channel);
    if (waiters) for (const waiter of [...waiters]) waiter(raw);
  };

  constructor(private readonly options: ResultCacheOptions) {
    options.topics.onMessage(this.onMessage);
  }

  /** Starts adding this process's counters to the tenant's totals in Redis, every couple of seconds. */
  start(): void {
    this.flushTimer = setInterval(() => void this.flush(), STATS_FLUSH_MS);
    this.flushTimer.unref();
  }

  /** Stops the counters, after adding the last of them. */
  async close(): Promise<void> {
    clearInterval(this.flushTimer);
    this.flushTimer = undefined;
    await this.flush();
  }

  /**
   * The tenant's agents' caches: each agent of `agents` (the registered ones) with a policy, and every
   * agent with counters. Sorted by name.
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
   */
  async summary(tenant: string, agents: readonly string[]): Promise<AgentCacheSummary[]> {
    try {
      return await this.readSummary(tenant, agents);
    } catch (error) {
      throw new GatewayError('UNAVAILABLE', 'the result cache (Redis) is unavailable; retry shortly', { cause: error });
    }
  }

  private async readSummary(tenant: string, agents: readonly string[]): Promise<AgentCacheSummary[]> {
    const { redis, keys } = this.options;
    const counters = await redis.hgetall(keys.cacheStats(tenant));
    const byAgent = new Map<string, AgentCacheSummary>();
    const row = (agent: string): AgentCacheSummary => {
      let summary = byAgent.get(agent);
      if (!summary) {
        summary = { agent, entries: 0, hits: 0, misses: 0, shared: 0, stored: 0 };
        byAgent.set(agent, summary);
      }
      return summary;
    };
    for (const [field, value] of Object.entries(counters)) {
      const colon = field.indexOf(':');
      const counter = field.slice(0, colon) as Counter;
      if (COUNTERS.includes(counter)) row(field.slice(colon + 1))[counter] = Number(value);
    }
    const names = [...new Set([...agents, ...byAgent.keys()])];
    // One command each: an agent's cache keys live in its own slot on Redis Cluster.
    const found = await Promise.all(
      names.map((agent) =>
        Promise.all([redis.get(keys.cachePolicy(tenant, agent)), redis.hlen(keys.cacheIndex(tenant, agent))]),
      ),
    );
    names.forEach((agent, i) => {
      const [policy, entries] = found[i]!;
      if (policy === null && !byAgent.has(agent)) return;
      const summary = row(agent);
      summary.entries = entries;
      if (policy !== null) summary.policy = JSON.parse(policy) as CachePolicy;
    });
    return [...byAgent.values()].sort((a, b) => (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0));
  }

  private count(tenant: string, agent: string, counter: Counter): void {
    this.stats[counter] += 1;
    let fields = this.unflushed.get(tenant);
    if (!fields) {
      fields = new Map();
      this.unflushed.set(tenant, fields);
    }
    const field = `${counter}:${agent}`;
    fields.set(field, (fields.get(field) ?? 0) + 1);
  }

  /** Adds the counts since the last flush to the tenants' totals; counts that fail wait for the next. */
  private async flush(): Promise<void> {
    if (this.unflushed.size === 0) return;
    const batch = this.unflushed;
    this.unflushed = new Map();
    const { redis, keys } = this.options;
    await Promise.all(
      [...batch].map(async ([tenant, fields]) => {
        const pipeline = redis.pipeline();
        for (const [field, n] of fields) pipeline.hincrby(keys.cacheStats(tenant), field, n);
        const results = await pipeline.exec().catch(() => null);
        if (results?.every(([error]) => !error)) return;
        // Not written: counted again with the next round's.
        const again = this.unflushed.get(tenant) ?? new Map<string, number>();
        for (const [field, n] of fields) again.set(field, (again.get(field) ?? 0) + n);
        this.unflushed.set(tenant, again);
      }),
    );
  }

  /** Stores an agent's cache policy (its latest registration's), or removes it. */
  async setPolicy(tenant: string, agent: string, policy: CachePolicy | undefined): Promise<void> {
    const key = this.options.keys.cachePolicy(tenant, agent);
    if (policy) await this.options.redis.set(key, JSON.stringify(policy));
    else await this.options.redis.del(key);
    this.policies.delete(`${tenant}/${agent}`);
  }

  /** The ttl of a task's entries, or undefined when the task is not cacheable. */
  async ttlOf(tenant: string, agent: string, task: string): Promise<number | undefined> {
    const memoKey = `${tenant}/${agent}`;
    let memo = this.policies.get(memoKey);
    if (!memo || Date.now() - memo.at > POLICY_MEMO_MS) {
      const json = await this.options.redis.get(this.options.keys.cachePolicy(tenant, agent)).catch(() => null);
      memo = { policy: json === null ? undefined : (JSON.parse(json) as CachePolicy), at: Date.now() };
      this.policies.set(memoKey, memo);
      if (this.policies.size > 10_000) this.policies.clear();
    }
    const policy = memo.policy;
    return policy && (policy.tasks.includes(task) || policy.tasks.includes('*')) ? policy.ttlMs : undefined;
  }

  /**
   * Looks a call up: a stored output, an identical call's outcome (waited for until `deadline`), or
   * the lead, which the caller then runs and reports with `done`.
   * @throws {GatewayError} the identical call's error; `TIMEOUT` at the deadline.
   */
  async lookup(
    tenant: string,
    agent: string,
    task: string,
    data: unknown,
    ttlMs: number,
    deadline: number,
  ): Promise<CacheOutcome> {
    const { redis, keys } = this.options;
    const digest = createHash('sha256')
      .update(`${task}\u0000${canonicalJson(data ?? null)}`)
      .digest('hex');
    const entry = keys.cacheEntry(tenant, agent, digest);
    const flight = keys.cacheFlight(tenant, agent, digest);
    for (;;) {
      const stored = await redis.get(entry).catch(() => null);
      if (stored !== null) {
        this.count(tenant, agent, 'hits');
        return { kind: 'hit', output: JSON.parse(stored) };
      }
      const here = this.local.get(entry);
      if (here) return this.shared(tenant, agent, await here);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new GatewayError('TIMEOUT', `the call did not end within its deadline`);
      const lead = await redis.set(flight, '1', 'PX', remaining, 'NX').catch(() => 'OK');
      if (lead === 'OK') {
        this.count(tenant, agent, 'misses');
        return { kind: 'lead', done: this.leader(tenant, agent, task, digest, entry, flight, ttlMs) };
      }
      const outcome = await this.awaitFlight(entry, flight, keys.cacheChannel(tenant, agent, digest), deadline);
      if (outcome) return this.shared(tenant, agent, outcome);
      // The flight ended with no word (its replica died): look again, and lead it if nobody does.
    }
  }

  /** Empties the entries of an agent (of one task, or all). @returns how many were removed. */
  async invalidate(tenant: string, agent: string, task?: string): Promise<number> {
    const { redis, keys } = this.options;
    const index = keys.cacheIndex(tenant, agent);
    const all = await redis.hgetall(index);
    const digests = Object.entries(all)
      .filter(([, t]) => task === undefined || t === task)
      .map(([digest]) => digest);
    if (digests.length === 0) return 0;
    const pipeline = redis.pipeline();
    for (const digest of digests) pipeline.del(keys.cacheEntry(tenant, agent, digest));
    pipeline.hdel(index, ...digests);
    const results = (await pipeline.exec()) ?? [];
    return results.slice(0, digests.length).reduce((n, [, removed]) => n + Number(removed ?? 0), 0);
  }

  private shared(tenant: string, agent: string, outcome: { output: unknown } | { error: WireError }): CacheOutcome {
    if ('error' in outcome) throw GatewayError.fromWire(outcome.error);
    this.count(tenant, agent, 'shared');
    return { kind: 'shared', output: outcome.output };
  }

  /** The report of a call this replica leads: stores a cacheable output, and tells the waiters. */
  private leader(
    tenant: string,
    agent: string,
    task: string,
    digest: string,
    entry: string,
    flight: string,
    ttlMs: number,
  ): (outcome: { output: unknown; cacheable: boolean } | { error: GatewayError }) => void {
    let settle!: (outcome: { output: unknown } | { error: WireError }) => void;
    this.local.set(
      entry,
      new Promise((resolve) => {
        settle = resolve;
      }),
    );
    return (outcome) => {
      const { redis, keys } = this.options;
      const shared = 'error' in outcome ? { error: outcome.error.toWire() } : { output: outcome.output };
      this.local.delete(entry);
      settle(shared);
      const publish = () =>
        this.options.topics
          .publish(keys.cacheChannel(tenant, agent, digest), JSON.stringify(shared))
          .catch(() => 0)
          .then(() => redis.del(flight))
          .catch(() => undefined);
      if ('error' in outcome || !outcome.cacheable) {
        void publish();
        return;
      }
      const json = JSON.stringify(outcome.output === undefined ? null : outcome.output);
      const index = keys.cacheIndex(tenant, agent);
      redis
        .multi()
        .set(entry, json, 'PX', ttlMs)
        .hset(index, digest, task)
        .pexpire(index, ttlMs)
        .exec()
        .then(() => this.count(tenant, agent, 'stored'))
        .catch((error: unknown) =>
          this.options.logger.warn({ err: (error as Error).message }, 'could not cache a result'),
        )
        .finally(() => void publish());
    };
  }

  /**
   * Waits for the outcome of an identical call another replica leads: its message on the flight's
   * channel, or its entry, until the deadline. @returns undefined when the flight ended with no word.
   * @throws {GatewayError} `TIMEOUT` at the deadline.
   */
  private async awaitFlight(
    entry: string,
    flight: string,
    channel: string,
    deadline: number,
  ): Promise<{ output: unknown } | { error: WireError } | undefined> {
    const { redis, topics } = this.options;
    let waiters = this.waiting.get(channel);
    if (!waiters) {
      waiters = new Set();
      this.waiting.set(channel, waiters);
      await topics.listen(channel);
    }
    const mine = waiters;
    try {
      return await new Promise((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const done = (value: { output: unknown } | { error: WireError } | undefined, error?: GatewayError) => {
          clearTimeout(timer);
          mine.delete(onMessage);
          if (error) reject(error);
          else resolve(value);
        };
        const onMessage = (raw: string) => {
          try {
            done(JSON.parse(raw) as { output: unknown } | { error: WireError });
          } catch {
            done(undefined);
          }
        };
        mine.add(onMessage);
        // The flight may have ended between the lookup and the subscription: look, and again every poll.
        const look = async () => {
          if (Date.now() >= deadline) {
            done(undefined, new GatewayError('TIMEOUT', 'an identical call in flight did not end within the deadline'));
            return;
          }
          const [stored, flying] = await Promise.all([
            redis.get(entry).catch(() => null),
            redis.exists(flight).catch(() => 1),
          ]);
          if (!mine.has(onMessage)) return;
          if (stored !== null) done({ output: JSON.parse(stored) });
          else if (flying === 0) done(undefined);
          else timer = setTimeout(() => void look(), Math.min(FLIGHT_POLL_MS, Math.max(1, deadline - Date.now())));
        };
        void look();
      });
    } finally {
      if (mine.size === 0 && this.waiting.get(channel) === mine) {
        this.waiting.delete(channel);
        topics.stop(channel);
      }
    }
  }
}
