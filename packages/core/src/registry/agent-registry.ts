import { randomInt } from 'node:crypto';
import type { AgentInfo } from '@openclaw/protocol';
import { GatewayError } from '@openclaw/protocol';
import type Redis from 'ioredis';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { LIST_AGENTS, PICK_INSTANCE, SWEEP_REPLICA, UNREGISTER_INSTANCE } from './registry-scripts';

/** The registry's scripts, as ioredis commands (`defineCommand`). */
interface ScriptedRedis extends Redis {
  ocPickInstance(...args: (string | number)[]): Promise<unknown>;
  ocUnregisterInstance(...args: (string | number)[]): Promise<unknown>;
  ocSweepReplica(...args: (string | number)[]): Promise<unknown>;
  ocListAgents(...args: (string | number)[]): Promise<unknown>;
}

/**
 * The registry name of a tenant's agent: `<tenant>/<name>`. Tenants and agent names cannot contain
 * `/`, so two tenants' agents of the same name never meet.
 */
export function qualifiedAgent(tenant: string, name: string): string {
  return `${tenant}/${name}`;
}

/** An agent instance attached to this replica. `agent` is the qualified name ({@link qualifiedAgent}). */
export interface InstanceRegistration {
  instanceId: string;
  agent: string;
  /** Tasks it handles; empty means any task. */
  tasks: readonly string[];
  concurrency: number;
  meta?: Record<string, unknown>;
  /** The principal of the connection it is attached to (delegations are bound to it). */
  principal?: string;
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

/** Options of {@link AgentRegistry}. */
export interface AgentRegistryOptions {
  redis: Redis;
  keys: RedisKeys;
  replicaId: string;
  /**
   * TTL of this replica's heartbeat key; heartbeats go out every fifth of it. Only a replica that
   * hosts agents (and calls `start`) needs it: a worker only looks agents up.
   */
  presenceTtlMs?: number;
  logger: Logger;
}

/**
 * The cluster's agent registry and presence, in Redis. This replica keeps a heartbeat key with a TTL
 * and registers its agent instances under its id; every replica sweeps replicas whose heartbeat has
 * expired, and routing and listing ignore their instances at once. So a dead replica's agents leave
 * `agents.list` within `presenceTtlMs`, and its garbage is gone one sweep later.
 */
export class AgentRegistry {
  private readonly redis: ScriptedRedis;
  private readonly keys: RedisKeys;
  private readonly replicaId: string;
  private readonly ttl: number | undefined;
  private readonly logger: Logger;
  private readonly local = new Map<string, InstanceRegistration>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** No sweep before this time (ms): set when the Redis connection comes back. */
  private sweepAfter = 0;
  private heartbeatRunning = false;
  private closing: Promise<void> | undefined;

  constructor(options: AgentRegistryOptions) {
    this.redis = options.redis as ScriptedRedis;
    // EVALSHA with a fallback to EVAL (after a Redis restart empties the script cache).
    if (typeof this.redis.ocPickInstance !== 'function') {
      this.redis.defineCommand('ocPickInstance', { numberOfKeys: 5, lua: PICK_INSTANCE });
      this.redis.defineCommand('ocUnregisterInstance', { numberOfKeys: 5, lua: UNREGISTER_INSTANCE });
      this.redis.defineCommand('ocSweepReplica', { numberOfKeys: 2, lua: SWEEP_REPLICA });
      this.redis.defineCommand('ocListAgents', { numberOfKeys: 2, lua: LIST_AGENTS });
    }
    this.keys = options.keys;
    this.replicaId = options.replicaId;
    this.ttl = options.presenceTtlMs;
    this.logger = options.logger;
  }

  /** The presence TTL of a registry that hosts agents. */
  private get presenceTtlMs(): number {
    if (this.ttl === undefined) throw new Error('this registry was made without a presence TTL: it hosts no agents');
    return this.ttl;
  }

  /** Announces this replica and starts the heartbeat and the sweep of dead replicas. */
  async start(): Promise<void> {
    // After Redis comes back, every replica's heartbeat may have expired meanwhile: give them one
    // presence TTL to write it again before taking any for dead.
    this.redis.on('ready', () => {
      this.sweepAfter = Date.now() + this.presenceTtlMs;
    });
    await this.heartbeat();
    const every = Math.max(200, Math.floor(this.presenceTtlMs / 5));
    this.heartbeatTimer = setInterval(() => void this.heartbeat().catch(() => undefined), every);
    this.sweepTimer = setInterval(() => void this.sweep().catch(() => undefined), every);
    this.heartbeatTimer.unref();
    this.sweepTimer.unref();
  }

  /** Registers an instance attached to this replica. */
  async registerInstance(registration: InstanceRegistration): Promise<void> {
    this.local.set(registration.instanceId, registration);
    await this.guard(() => this.writeInstance(registration));
  }

  /** Removes an instance of this replica (its socket closed). */
  /**
   * Marks the agents of this replica's instances as moving for `ttlMs` (the replica drains): until
   * they register again elsewhere, a call finds them moving (`AGENT_UNAVAILABLE`, retryable) rather
   * than unknown (`AGENT_NOT_FOUND`).
   */
  async markMoving(ttlMs: number): Promise<void> {
    const agents = new Set([...this.local.values()].map((r) => r.agent));
    if (agents.size === 0) return;
    const batch = this.redis.multi();
    for (const agent of agents) batch.set(this.keys.agentMoving(agent), this.replicaId, 'PX', ttlMs);
    await this.guard(() => batch.exec());
  }

  async unregisterInstance(instanceId: string): Promise<void> {
    const registration = this.local.get(instanceId);
    if (!registration) return;
    this.local.delete(instanceId);
    await this.guard(() =>
      this.redis.ocUnregisterInstance(
        this.keys.instance(instanceId),
        this.keys.instanceLoad(instanceId),
        this.keys.agentInstances(registration.agent),
        this.keys.replicaInstances(this.replicaId),
        this.keys.agents(),
        this.keys.registry,
        instanceId,
        registration.agent,
      ),
    );
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
    const reply = (await this.guard(() =>
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
    const json = (await this.guard(() =>
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
    return this.guard(async () => {
      const ids = await this.redis.smembers(this.keys.agentInstances(agent));
      if (ids.length === 0) return [];
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hget(this.keys.instance(id), 'principal');
      const found = ((await pipeline.exec()) ?? []).map(([, value]) => value);
      return [...new Set(found.filter((p): p is string => typeof p === 'string' && p !== ''))].sort();
    });
  }

  /** Whether a replica's heartbeat is current. */
  async isReplicaAlive(replicaId: string): Promise<boolean> {
    return (await this.guard(() => this.redis.exists(this.keys.replicaAlive(replicaId)))) === 1;
  }

  /** Registers (or replaces) an HTTP agent. */
  async registerHttpAgent(agent: HttpAgentRegistration): Promise<void> {
    await this.guard(() =>
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
    const results = await this.guard(() =>
      this.redis.multi().del(this.keys.httpAgent(name)).srem(this.keys.httpAgents(), name).exec(),
    );
    return results?.[0]?.[1] === 1;
  }

  /**
   * Writes the heartbeat and every local instance again. Called when a connection to Redis comes
   * back: if Redis restarted empty, this replica's agents reappear without a restart.
   */
  async resync(): Promise<void> {
    if (this.redis.status !== 'ready') return;
    await this.redis
      .multi()
      .set(this.keys.replicaAlive(this.replicaId), String(Date.now()), 'PX', this.presenceTtlMs)
      .sadd(this.keys.replicas(), this.replicaId)
      .exec();
    for (const registration of this.local.values()) await this.writeInstance(registration);
    if (this.local.size > 0) this.logger.info({ instances: this.local.size }, 'registered local agent instances again');
  }

  /** Removes the instances of every replica whose heartbeat expired. @returns how many were removed. */
  async sweep(): Promise<number> {
    if (this.redis.status !== 'ready' || Date.now() < this.sweepAfter) return 0;
    const replicas = await this.redis.smembers(this.keys.replicas());
    let removed = 0;
    for (const replica of replicas) {
      if (replica === this.replicaId) continue;
      const n = Number(
        await this.redis.ocSweepReplica(this.keys.replicas(), this.keys.agents(), this.keys.registry, replica),
      );
      if (n > 0) {
        removed += n;
        this.logger.info({ deadReplica: replica, instances: n }, 'removed the agent instances of a dead replica');
      }
    }
    return removed;
  }

  /** Stops heartbeats and removes this replica and its instances from the registry. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    clearInterval(this.sweepTimer);
    const ids = [...this.local.keys()];
    for (const id of ids) await this.unregisterInstance(id).catch(() => undefined);
    if (this.redis.status === 'ready') {
      await this.redis
        .multi()
        .del(this.keys.replicaAlive(this.replicaId), this.keys.replicaInstances(this.replicaId))
        .srem(this.keys.replicas(), this.replicaId)
        .exec()
        .catch(() => undefined);
    }
  }

  /**
   * Refreshes this replica's heartbeat key. If the key had vanished (Redis restarted, or this
   * process stalled past the TTL and was swept), every local instance is registered again.
   */
  private async heartbeat(): Promise<void> {
    if (this.heartbeatRunning || this.redis.status !== 'ready') return;
    this.heartbeatRunning = true;
    try {
      const key = this.keys.replicaAlive(this.replicaId);
      const refreshed = await this.redis.set(key, String(Date.now()), 'PX', this.presenceTtlMs, 'XX');
      if (refreshed === 'OK') return;
      await this.redis
        .multi()
        .set(key, String(Date.now()), 'PX', this.presenceTtlMs)
        .sadd(this.keys.replicas(), this.replicaId)
        .exec();
      if (this.local.size > 0) {
        for (const registration of this.local.values()) await this.writeInstance(registration);
        this.logger.info({ instances: this.local.size }, 'registered local agent instances again');
      }
    } finally {
      this.heartbeatRunning = false;
    }
  }

  private async writeInstance(r: InstanceRegistration): Promise<void> {
    await this.redis
      .multi()
      .hset(this.keys.instance(r.instanceId), {
        agent: r.agent,
        replica: this.replicaId,
        concurrency: String(r.concurrency),
        tasks: encodeTasks(r.tasks),
        meta: JSON.stringify(r.meta ?? {}),
        principal: r.principal ?? '',
        registeredAt: String(Date.now()),
      })
      .sadd(this.keys.agentInstances(r.agent), r.instanceId)
      .sadd(this.keys.agents(), r.agent)
      .sadd(this.keys.replicaInstances(this.replicaId), r.instanceId)
      .sadd(this.keys.replicas(), this.replicaId)
      .exec();
  }

  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready') {
      throw new GatewayError('UNAVAILABLE', 'the cluster registry (Redis) is unavailable; retry shortly');
    }
    try {
      return await operation();
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw new GatewayError('UNAVAILABLE', 'the cluster registry (Redis) is unavailable; retry shortly', {
        cause: error,
      });
    }
  }
}

/** Tasks as the scripts match them: newline-delimited on both ends; empty for any task. */
function encodeTasks(tasks: readonly string[]): string {
  return tasks.length === 0 ? '' : `\n${tasks.join('\n')}\n`;
}
