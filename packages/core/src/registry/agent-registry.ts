import type { AgentInfo } from '@openclaw/protocol';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { AgentPresence, type InstanceRegistration } from './agent-presence';
import { AgentRouting, type HttpAgentRegistration, type PickOptions, type PickResult } from './agent-routing';

/** Options of {@link AgentRegistry}. */
export interface AgentRegistryOptions {
  redis: RedisClient;
  keys: RedisKeys;
  replicaId: string;
  /**
   * TTL of this replica's heartbeat key; heartbeats go out every fifth of it. Only a replica that
   * hosts agents (and calls `start`) needs it: a worker only looks agents up.
   */
  presenceTtlMs?: number;
  logger: Logger;
  /**
   * Tells every process that the registry changed (a broadcast on the bus); each then loads its
   * routing copy again ({@link AgentRegistry.changed}).
   */
  announce: () => void;
  /** How often the routing copy checks the registry version and the replicas' heartbeats. Default 1000 ms. */
  checkIntervalMs?: number;
}

/**
 * The cluster's agent registry and presence, in Redis, as one object over its two parts:
 * {@link AgentPresence} (this replica's heartbeat key, its agent instances, the sweep of dead
 * replicas, draining) and {@link AgentRouting} (where a call goes, its concurrency slot, HTTP agents,
 * the listing of agents). Routing and listing ignore the instances of a replica whose heartbeat
 * expired at once, so a dead replica's agents leave `agents.list` within `presenceTtlMs`, and its
 * garbage is gone one sweep later.
 */
export class AgentRegistry {
  /** This replica's heartbeat and agent instances. */
  readonly presence: AgentPresence;
  /** The lookups that route a call, and the HTTP agents. */
  readonly routing: AgentRouting;

  constructor(options: AgentRegistryOptions) {
    this.routing = new AgentRouting({
      redis: options.redis,
      keys: options.keys,
      logger: options.logger,
      checkIntervalMs: options.checkIntervalMs ?? 1000,
      announce: options.announce,
    });
    this.presence = new AgentPresence({ ...options, announce: this.routing.announce });
  }

  /** Loads the routing copy and starts following the registry (every process that routes calls). */
  startRouting(): Promise<void> {
    return this.routing.table.start();
  }

  /** Announces this replica and starts the heartbeat and the sweep of dead replicas. */
  start(): Promise<void> {
    return this.presence.start();
  }

  /** Another process changed the registry: the routing copy is loaded again. */
  changed(): void {
    this.routing.table.changed();
  }

  /** The number of tasks a local instance holds, for `agents.list` (written a moment later). */
  reportLoad(instanceId: string, openTasks: number): void {
    this.presence.reportLoad(instanceId, openTasks);
  }

  /** Registers an instance attached to this replica. */
  registerInstance(registration: InstanceRegistration): Promise<void> {
    return this.presence.registerInstance(registration);
  }

  /**
   * Marks the agents of this replica's instances as moving for `ttlMs` (the replica drains): until
   * they register again elsewhere, a call finds them moving (`AGENT_UNAVAILABLE`, retryable) rather
   * than unknown (`AGENT_NOT_FOUND`).
   */
  markMoving(ttlMs: number): Promise<void> {
    return this.presence.markMoving(ttlMs);
  }

  /** Removes an instance of this replica (its socket closed). */
  unregisterInstance(instanceId: string): Promise<void> {
    return this.presence.unregisterInstance(instanceId);
  }

  /**
   * Chooses where a task goes, from this process's routing copy (see {@link AgentRouting.pick}).
   * @throws {GatewayError} `UNAVAILABLE` when the registry cannot be read.
   */
  pick(agent: string, task: string, options?: PickOptions): Promise<PickResult> {
    return this.routing.pick(agent, task, options);
  }

  /**
   * Every agent with a live instance, and every HTTP agent: of one tenant (names without the
   * tenant), or with `tenant` undefined, of all (names as registered).
   */
  list(tenant?: string): Promise<AgentInfo[]> {
    return this.routing.list(tenant);
  }

  /** The principals the live instances of an agent (qualified name) are attached as, each once. */
  principalsOf(agent: string): Promise<string[]> {
    return this.routing.principalsOf(agent);
  }

  /** Whether a replica's heartbeat is current. */
  isReplicaAlive(replicaId: string): Promise<boolean> {
    return this.presence.isReplicaAlive(replicaId);
  }

  /** Registers (or replaces) an HTTP agent. */
  registerHttpAgent(agent: HttpAgentRegistration): Promise<void> {
    return this.routing.registerHttpAgent(agent);
  }

  /** Removes an HTTP agent. @returns whether it existed. */
  removeHttpAgent(name: string): Promise<boolean> {
    return this.routing.removeHttpAgent(name);
  }

  /**
   * Writes the heartbeat and every local instance again. Called when a connection to Redis comes
   * back: if Redis restarted empty, this replica's agents reappear without a restart.
   */
  resync(): Promise<void> {
    return this.presence.resync();
  }

  /** Removes the instances of every replica whose heartbeat expired. @returns how many were removed. */
  sweep(): Promise<number> {
    return this.presence.sweep();
  }

  /** Stops heartbeats and removes this replica and its instances from the registry. Idempotent. */
  close(): Promise<void> {
    this.routing.table.stop();
    return this.presence.close();
  }
}
