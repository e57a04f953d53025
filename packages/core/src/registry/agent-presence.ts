import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { encodeTasks, guarded } from './registry-redis';
import { SWEEP_REPLICA, UNREGISTER_INSTANCE } from './registry-scripts';

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

/** Options of {@link AgentPresence}. */
export interface AgentPresenceOptions {
  /** Command connection (not owned: the caller closes it). */
  redis: RedisClient;
  keys: RedisKeys;
  replicaId: string;
  /**
   * TTL of this replica's heartbeat key; heartbeats go out every fifth of it. Only a replica that
   * hosts agents (and calls `start`) needs it: a worker only asks whether a replica is alive.
   */
  presenceTtlMs?: number;
  logger: Logger;
  /** Tells every process that the registry changed (after this process wrote it). */
  announce: () => void;
}

/** How long the count of an instance's open tasks may lag behind in `agents.list`. */
const LOAD_REPORT_MS = 100;

/**
 * This replica's presence in the cluster registry, in Redis. The replica keeps a heartbeat key with
 * a TTL and registers its agent instances under its id; every replica sweeps replicas whose
 * heartbeat has expired (routing ignores their instances at once, {@link AgentRouting}). A draining
 * replica marks its agents as moving until they register again elsewhere.
 */
export class AgentPresence {
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  private readonly replicaId: string;
  private readonly ttl: number | undefined;
  private readonly logger: Logger;
  private readonly local = new Map<string, InstanceRegistration>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** No sweep before this time (ms): set when the Redis connection comes back. */
  private sweepAfter = 0;
  /** When this replica's heartbeat was last written. */
  private lastHeartbeatAt = 0;
  private heartbeatRunning = false;
  private closing: Promise<void> | undefined;
  private readonly announce: () => void;
  /** Open-task counts of local instances not yet written (for `agents.list`). */
  private readonly loads = new Map<string, number>();
  private loadTimer: NodeJS.Timeout | undefined;

  constructor(options: AgentPresenceOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.replicaId = options.replicaId;
    this.ttl = options.presenceTtlMs;
    this.logger = options.logger;
    this.announce = options.announce;
  }

  /**
   * The number of tasks a local instance holds, as `agents.list` shows it: written to Redis a little
   * later ({@link LOAD_REPORT_MS}), together with the other changes of that moment.
   */
  reportLoad(instanceId: string, openTasks: number): void {
    this.loads.set(instanceId, openTasks);
    if (this.loadTimer) return;
    this.loadTimer = setTimeout(() => {
      this.loadTimer = undefined;
      if (this.redis.status !== 'ready') return;
      const batch = this.redis.pipeline();
      for (const [id, n] of this.loads) if (this.local.has(id)) batch.hset(this.keys.instance(id), 'inFlight', n);
      this.loads.clear();
      void batch.exec().catch(() => undefined);
    }, LOAD_REPORT_MS);
    this.loadTimer.unref();
  }

  /** The presence TTL of a replica that hosts agents. */
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
    const every = this.heartbeatEveryMs;
    this.heartbeatTimer = setInterval(() => void this.heartbeat().catch(() => undefined), every);
    this.sweepTimer = setInterval(() => void this.sweep().catch(() => undefined), every);
    this.heartbeatTimer.unref();
    this.sweepTimer.unref();
  }

  /** Registers an instance attached to this replica. */
  async registerInstance(registration: InstanceRegistration): Promise<void> {
    this.local.set(registration.instanceId, registration);
    await guarded(this.redis, () => this.writeInstance(registration));
    this.announce();
  }

  /**
   * Marks the agents of this replica's instances as moving for `ttlMs` (the replica drains): until
   * they register again elsewhere, a call finds them moving (`AGENT_UNAVAILABLE`, retryable) rather
   * than unknown (`AGENT_NOT_FOUND`).
   */
  async markMoving(ttlMs: number): Promise<void> {
    const agents = new Set([...this.local.values()].map((r) => r.agent));
    if (agents.size === 0) return;
    const until = Date.now() + ttlMs;
    const batch = this.redis.multi().zremrangebyscore(this.keys.movingAgents(), '-inf', Date.now());
    for (const agent of agents) batch.zadd(this.keys.movingAgents(), until, agent);
    batch.incr(this.keys.registryVersion());
    await guarded(this.redis, () => batch.exec());
    this.announce();
  }

  /** Removes an instance of this replica (its socket closed). */
  async unregisterInstance(instanceId: string): Promise<void> {
    const registration = this.local.get(instanceId);
    if (!registration) return;
    this.local.delete(instanceId);
    await guarded(this.redis, () =>
      UNREGISTER_INSTANCE.run(
        this.redis,
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
    this.announce();
  }

  /** Whether a replica's heartbeat is current. */
  async isReplicaAlive(replicaId: string): Promise<boolean> {
    return (await guarded(this.redis, () => this.redis.exists(this.keys.replicaAlive(replicaId)))) === 1;
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
      .incr(this.keys.registryVersion())
      .exec();
    for (const registration of this.local.values()) await this.writeInstance(registration);
    if (this.local.size > 0) this.logger.info({ instances: this.local.size }, 'registered local agent instances again');
    this.announce();
  }

  private maySweep(): boolean {
    const now = Date.now();
    if (this.redis.status !== 'ready' || now < this.sweepAfter) return false;
    return this.lastHeartbeatAt === 0 || now - this.lastHeartbeatAt <= 2 * this.heartbeatEveryMs;
  }

  private get heartbeatEveryMs(): number {
    return Math.max(200, Math.floor(this.presenceTtlMs / 5));
  }

  /**
   * Removes the instances of every replica whose heartbeat expired. Only while this replica's own
   * heartbeat is current: one that cannot write its own cannot tell a dead replica from a shared
   * outage. @returns how many were removed.
   */
  async sweep(): Promise<number> {
    if (!this.maySweep()) return 0;
    const replicas = await this.redis.smembers(this.keys.replicas());
    let removed = 0;
    for (const replica of replicas) {
      if (replica === this.replicaId) continue;
      // Again before each: a read that waited out a failover comes back after heartbeats were missed.
      if (!this.maySweep()) break;
      const n = Number(
        await SWEEP_REPLICA.run(this.redis, this.keys.replicas(), this.keys.agents(), this.keys.registry, replica),
      );
      if (n >= 0) this.announce();
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
    clearTimeout(this.loadTimer);
    const ids = [...this.local.keys()];
    for (const id of ids) await this.unregisterInstance(id).catch(() => undefined);
    if (this.redis.status === 'ready') {
      await this.redis
        .multi()
        .del(this.keys.replicaAlive(this.replicaId), this.keys.replicaInstances(this.replicaId))
        .srem(this.keys.replicas(), this.replicaId)
        .incr(this.keys.registryVersion())
        .exec()
        .catch(() => undefined);
      this.announce();
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
      const now = Date.now();
      if (this.lastHeartbeatAt > 0 && now - this.lastHeartbeatAt > 2 * this.heartbeatEveryMs) {
        // This heartbeat could not be written for a while, and the others' likely neither (on Redis
        // Cluster, the registry's master failing over while the connection stays up): give them one
        // presence TTL to write theirs again before taking any for dead.
        this.sweepAfter = Math.max(this.sweepAfter, now + this.presenceTtlMs);
      }
      this.lastHeartbeatAt = now;
      if (refreshed === 'OK') return;
      await this.redis
        .multi()
        .set(key, String(Date.now()), 'PX', this.presenceTtlMs)
        .sadd(this.keys.replicas(), this.replicaId)
        .incr(this.keys.registryVersion())
        .exec();
      if (this.local.size > 0) {
        for (const registration of this.local.values()) await this.writeInstance(registration);
        this.logger.info({ instances: this.local.size }, 'registered local agent instances again');
      }
      this.announce();
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
      .incr(this.keys.registryVersion())
      .exec();
  }
}
