import type { AgentInfo } from '@openclaw/protocol';
import { GatewayError } from '@openclaw/protocol';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { RateLeases } from './rate-leases';
import { encodeTasks, guarded } from './registry-redis';
import { LIST_AGENTS } from './registry-scripts';
import { type RoutedInstance, RouteTable } from './route-table';

/**
 * The registry name of a tenant's agent: `<tenant>/<name>`. Tenants and agent names cannot contain
 * `/`, so two tenants' agents of the same name never meet.
 */
export function qualifiedAgent(tenant: string, name: string): string {
  return `${tenant}/${name}`;
}

/** An agent reachable over HTTP, registered by URL. */
export interface HttpAgentRegistration {
  name: string;
  url: string;
  /** Tasks it handles; empty means any task. */
  tasks: readonly string[];
  /** Its own deadline, if shorter than the caller's. */
  timeoutMs?: number;
}

/** Cluster-wide request limits of a call's principal and tenant (rate 0: no limit). */
export interface CallLimits {
  principal: { id: string; rate: number; burst: number };
  tenant: { id: string; rate: number; burst: number };
}

/** Where a task should go. */
export type PickResult =
  | { kind: 'rate-limited'; retryAfterMs: number; scope: 'principal' | 'tenant' }
  | { kind: 'instance'; instanceId: string; replicaId: string }
  | { kind: 'http'; url: string; timeoutMs: number | undefined }
  | { kind: 'busy'; instances: number }
  | { kind: 'no-task'; instances: number }
  | { kind: 'moving' }
  /** Instances are registered, but none of their replicas reports in (restarting, or dead and not swept yet). */
  | { kind: 'unreachable'; instances: number }
  | { kind: 'none' };

/** How a call is to be routed. */
export interface PickOptions {
  /** The cluster-wide limits the call is charged to (once: a call routed again is not charged again). */
  limits?: CallLimits;
  /** Calls this process has in flight on an instance: the pick prefers the least loaded. */
  load?: (instanceId: string) => number;
  /** Instances that refused the call (busy, or gone): not picked again. */
  exclude?: ReadonlySet<string>;
  /** Load the routing copy again before picking (an instance was found gone). */
  fresh?: boolean;
}

/** Options of {@link AgentRouting}. */
export interface AgentRoutingOptions {
  /** Command connection (not owned: the caller closes it). */
  redis: RedisClient;
  keys: RedisKeys;
  logger: Logger;
  /** How often the routing copy checks the registry version and the replicas' heartbeats. */
  checkIntervalMs: number;
  /** Tells every process that the registry changed (after this process wrote it). */
  announce: () => void;
}

/**
 * The routing lookups of the cluster registry: where a call goes, the HTTP agents, and the listing
 * of agents. A call is routed from this process's copy of the registry ({@link RouteTable}), without
 * a round trip to Redis, and charged to the cluster-wide rate limits from leased tokens
 * ({@link RateLeases}); the instance's concurrency is held by the replica that holds it, which
 * refuses a task beyond it, and the origin routes the task again ({@link PickOptions.exclude}). It
 * reads the instances {@link AgentPresence} writes, and ignores those of a replica whose heartbeat
 * has expired.
 */
export class AgentRouting {
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  /** The copy of the registry that calls are routed from. */
  readonly table: RouteTable;
  private readonly leases: RateLeases;
  /** Tells every process that the registry changed, this one first. */
  readonly announce: () => void;

  constructor(options: AgentRoutingOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.table = new RouteTable({
      redis: options.redis,
      keys: options.keys,
      logger: options.logger,
      checkIntervalMs: options.checkIntervalMs,
    });
    this.leases = new RateLeases(options.redis, options.keys);
    this.announce = () => {
      this.table.changed();
      options.announce();
    };
  }

  /**
   * Chooses where a task goes: the live instance with the fewest of this process's calls in flight,
   * below its concurrency, that handles the task (ties broken at random), else an HTTP agent of the
   * name, else why none. When nothing usable is found, the copy is loaded again first if the
   * registry changed meanwhile (an agent that registered a moment ago elsewhere is found).
   * @throws {GatewayError} `UNAVAILABLE` when the registry was never loaded and Redis cannot be reached.
   */
  async pick(agent: string, task: string, options: PickOptions = {}): Promise<PickResult> {
    if (!this.table.loaded || options.fresh) {
      if (this.redis.status !== 'ready') {
        // Nothing was sent, so nothing was dispatched: the caller may send the call again.
        throw new GatewayError('UNAVAILABLE', 'the cluster registry (Redis) is unavailable; retry shortly', {
          dispatched: false,
        });
      }
      await guarded(this.redis, () => this.table.refresh());
    }
    if (options.limits) {
      const refused = await this.leases.take([
        { scope: 'principal', limit: options.limits.principal },
        { scope: 'tenant', limit: options.limits.tenant },
      ]);
      if (refused) return { kind: 'rate-limited', ...refused };
    }
    const picked = this.choose(agent, task, options);
    if (picked.kind === 'instance' || picked.kind === 'http') return picked;
    if (this.redis.status !== 'ready') return picked;
    if (await this.table.changedSinceLoad().catch(() => false)) await this.table.refresh().catch(() => undefined);
    // The copy may also have been loaded meanwhile by an announcement.
    return this.choose(agent, task, options);
  }

  /**
   * Charges one request to the cluster-wide limits of its principal and tenant, as a routed call is
   * charged: for requests that do not route a call now (an async task submitted over HTTP).
   * @throws {GatewayError} `RATE_LIMITED`, with `retryAfterMs`, naming the scope refused.
   */
  async admit(limits: CallLimits): Promise<void> {
    const refused = await this.leases.take([
      { scope: 'principal', limit: limits.principal },
      { scope: 'tenant', limit: limits.tenant },
    ]);
    if (refused) {
      throw new GatewayError('RATE_LIMITED', `too many requests for this ${refused.scope} across the cluster`, {
        retryAfterMs: refused.retryAfterMs,
        details: { scope: refused.scope },
      });
    }
  }

  /** The pick from the copy as it is. */
  private choose(agent: string, task: string, options: PickOptions): PickResult {
    const all = this.table.instancesOf(agent);
    const n = all.length;
    let live = 0;
    let handles = 0;
    let best: RoutedInstance | undefined;
    let bestShare = Number.POSITIVE_INFINITY;
    const start = n > 1 ? Math.floor(Math.random() * n) : 0;
    for (let i = 0; i < n; i++) {
      const instance = all[(start + i) % n]!;
      if (!this.table.isAlive(instance.replica)) continue;
      live += 1;
      if (instance.tasks !== undefined && !instance.tasks.has(task)) continue;
      handles += 1;
      if (options.exclude?.has(instance.id)) continue;
      const load = options.load?.(instance.id) ?? 0;
      if (load >= instance.concurrency) continue;
      const share = load / instance.concurrency;
      if (share < bestShare) {
        best = instance;
        bestShare = share;
      }
    }
    if (best) return { kind: 'instance', instanceId: best.id, replicaId: best.replica };
    if (handles > 0) return { kind: 'busy', instances: handles };
    const moving = this.table.isMoving(agent);
    if (live > 0) return moving ? { kind: 'moving' } : { kind: 'no-task', instances: live };
    const http = this.table.httpAgent(agent);
    if (http) {
      if (http.tasks === undefined || http.tasks.has(task)) {
        return { kind: 'http', url: http.url, timeoutMs: http.timeoutMs };
      }
      return { kind: 'no-task', instances: 0 };
    }
    if (moving) return { kind: 'moving' };
    if (n > 0) return { kind: 'unreachable', instances: n };
    return { kind: 'none' };
  }

  /**
   * Every agent with a live instance, and every HTTP agent: of one tenant (names without the
   * tenant), or with `tenant` undefined, of all (names as registered).
   */
  async list(tenant?: string): Promise<AgentInfo[]> {
    const only = tenant === undefined ? '' : qualifiedAgent(tenant, '');
    const json = (await guarded(this.redis, () =>
      LIST_AGENTS.run(this.redis, this.keys.agents(), this.keys.httpAgents(), this.keys.registry, only),
    )) as string;
    const raw = JSON.parse(json) as unknown;
    // cjson encodes an empty table as {}: normalise.
    const agents = (Array.isArray(raw) ? raw : []) as (AgentInfo & { tasks: unknown })[];
    return agents
      .map((a) => ({ ...a, tasks: Array.isArray(a.tasks) ? (a.tasks as string[]).sort() : [] }))
      .sort((a, b) => a.name.localeCompare(b.name) || a.kind.localeCompare(b.kind));
  }

  /** The principals the live instances of an agent (qualified name) are attached as, each once. */
  async principalsOf(agent: string): Promise<string[]> {
    return guarded(this.redis, async () => {
      const ids = await this.redis.smembers(this.keys.agentInstances(agent));
      if (ids.length === 0) return [];
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hget(this.keys.instance(id), 'principal');
      const found = ((await pipeline.exec()) ?? []).map(([, value]) => value);
      return [...new Set(found.filter((p): p is string => typeof p === 'string' && p !== ''))].sort();
    });
  }

  /** Registers (or replaces) an HTTP agent. */
  async registerHttpAgent(agent: HttpAgentRegistration): Promise<void> {
    await guarded(this.redis, () =>
      this.redis
        .multi()
        .del(this.keys.httpAgent(agent.name))
        .hset(this.keys.httpAgent(agent.name), {
          url: agent.url,
          tasks: encodeTasks(agent.tasks),
          timeoutMs: agent.timeoutMs === undefined ? '' : String(agent.timeoutMs),
          createdAt: String(Date.now()),
        })
        .sadd(this.keys.httpAgents(), agent.name)
        .incr(this.keys.registryVersion())
        .exec(),
    );
    this.announce();
  }

  /** Removes an HTTP agent. @returns whether it existed. */
  async removeHttpAgent(name: string): Promise<boolean> {
    const results = await guarded(this.redis, () =>
      this.redis
        .multi()
        .del(this.keys.httpAgent(name))
        .srem(this.keys.httpAgents(), name)
        .incr(this.keys.registryVersion())
        .exec(),
    );
    this.announce();
    return results?.[0]?.[1] === 1;
  }
}
