import { randomInt } from 'node:crypto';
import type { AgentInfo } from '@openclaw/protocol';
import { GatewayError } from '@openclaw/protocol';
import type Redis from 'ioredis';
import type { RedisKeys } from '../redis/redis-keys';
import { encodeTasks, guarded } from './registry-redis';
import { LIST_AGENTS, PICK_INSTANCE } from './registry-scripts';

/** The routing scripts, as ioredis commands (`defineCommand`). */
interface RoutingRedis extends Redis {
  ocPickInstance(...args: (string | number)[]): Promise<unknown>;
  ocListAgents(...args: (string | number)[]): Promise<unknown>;
}

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

/**
 * A message to publish to the chosen instance's replica in the same round trip as the pick: its
 * JSON text is `head + instanceId + tail`. Not published when the chosen replica is `selfReplicaId`.
 */
export interface PickDispatch {
  selfReplicaId: string;
  head: string;
  tail: string;
}

/** Cluster-wide request limits of a call's principal and tenant (rate 0: no limit). */
export interface CallLimits {
  principal: { id: string; rate: number; burst: number };
  tenant: { id: string; rate: number; burst: number };
}

/** Where a task should go. */
export type PickResult =
  | { kind: 'rate-limited'; retryAfterMs: number; scope: 'principal' | 'tenant' }
  | {
      kind: 'instance';
      instanceId: string;
      replicaId: string;
      /** Subscribers that received the dispatch; undefined when it was not published (own replica, or no dispatch given). */
      receivers?: number;
    }
  | { kind: 'http'; url: string; timeoutMs: number | undefined }
  | { kind: 'busy'; instances: number }
  | { kind: 'no-task'; instances: number }
  | { kind: 'moving' }
  /** Instances are registered, but none of their replicas reports in (restarting, or dead and not swept yet). */
  | { kind: 'unreachable'; instances: number }
  | { kind: 'none' };

/** Options of {@link AgentRouting}. */
export interface AgentRoutingOptions {
  /** Command connection (not owned: the caller closes it). */
  redis: Redis;
  keys: RedisKeys;
}

/**
 * The routing lookups of the cluster registry, in Redis: where a call goes (one script picks an
 * instance of a live replica or an HTTP agent, reserves a concurrency slot, applies the cluster-wide
 * rate limits and can publish the dispatch, in one round trip), freeing that slot, the HTTP agents,
 * and the listing of agents. It reads the instances {@link AgentPresence} writes, and ignores those
 * of a replica whose heartbeat has expired.
 */
export class AgentRouting {
  private readonly redis: RoutingRedis;
  private readonly keys: RedisKeys;

  constructor(options: AgentRoutingOptions) {
    this.redis = options.redis as RoutingRedis;
    // EVALSHA with a fallback to EVAL (after a Redis restart empties the script cache).
    if (typeof this.redis.ocPickInstance !== 'function') {
      this.redis.defineCommand('ocPickInstance', { numberOfKeys: 5, lua: PICK_INSTANCE });
      this.redis.defineCommand('ocListAgents', { numberOfKeys: 2, lua: LIST_AGENTS });
    }
    this.keys = options.keys;
  }

  /**
   * Chooses where a task goes and, for an instance, reserves a slot on it for `reservationMs`.
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
   */
  async pick(
    agent: string,
    task: string,
    taskId: string,
    reservationMs: number,
    dispatch?: PickDispatch,
    limits?: CallLimits,
  ): Promise<PickResult> {
    if (this.redis.status !== 'ready') {
      // Nothing was sent, so nothing was dispatched: the caller may send the call again.
      throw new GatewayError('UNAVAILABLE', 'the cluster registry (Redis) is unavailable; retry shortly', {
        dispatched: false,
      });
    }
    const inbox = this.keys.inboxParts();
    const reply = (await guarded(this.redis, () =>
      this.redis.ocPickInstance(
        this.keys.agentInstances(agent),
        this.keys.httpAgent(agent),
        this.keys.rateBucket('principal', limits?.principal.id ?? '-'),
        this.keys.rateBucket('tenant', limits?.tenant.id ?? '-'),
        this.keys.agentMoving(agent),
        this.keys.registry,
        task,
        taskId,
        reservationMs,
        randomInt(1_000_000),
        dispatch?.selfReplicaId ?? '',
        inbox.head,
        inbox.tail,
        dispatch?.head ?? '',
        dispatch?.tail ?? '',
        limits?.principal.rate ?? 0,
        limits?.principal.burst ?? 0,
        limits?.tenant.rate ?? 0,
        limits?.tenant.burst ?? 0,
      ),
    )) as string[];
    switch (reply[0]) {
      case 'instance': {
        const receivers = Number(reply[3]);
        return receivers >= 0
          ? { kind: 'instance', instanceId: reply[1]!, replicaId: reply[2]!, receivers }
          : { kind: 'instance', instanceId: reply[1]!, replicaId: reply[2]! };
      }
      case 'http':
        return { kind: 'http', url: reply[1]!, timeoutMs: reply[2] ? Number(reply[2]) : undefined };
      case 'busy':
        return { kind: 'busy', instances: Number(reply[1]) };
      case 'rate-limited':
        return {
          kind: 'rate-limited',
          retryAfterMs: Number(reply[1]),
          scope: reply[2] === 'tenant' ? 'tenant' : 'principal',
        };
      case 'no-task':
        return { kind: 'no-task', instances: Number(reply[1]) };
      case 'moving':
        return { kind: 'moving' };
      case 'unreachable':
        return { kind: 'unreachable', instances: Number(reply[1]) };
      default:
        return { kind: 'none' };
    }
  }

  /** Frees the slot a task held on an instance. Best effort: a lost release expires by itself. */
  async release(instanceId: string, taskId: string): Promise<void> {
    if (this.redis.status !== 'ready') return;
    await this.redis.zrem(this.keys.instanceLoad(instanceId), taskId).catch(() => undefined);
  }

  /**
   * Every agent with a live instance, and every HTTP agent: of one tenant (names without the
   * tenant), or with `tenant` undefined, of all (names as registered).
   */
  async list(tenant?: string): Promise<AgentInfo[]> {
    const only = tenant === undefined ? '' : qualifiedAgent(tenant, '');
    const json = (await guarded(this.redis, () =>
      this.redis.ocListAgents(this.keys.agents(), this.keys.httpAgents(), this.keys.registry, only),
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
        .exec(),
    );
  }

  /** Removes an HTTP agent. @returns whether it existed. */
  async removeHttpAgent(name: string): Promise<boolean> {
    const results = await guarded(this.redis, () =>
      this.redis.multi().del(this.keys.httpAgent(name)).srem(this.keys.httpAgents(), name).exec(),
    );
    return results?.[0]?.[1] === 1;
  }
}
