import type { RedisClient } from '@openclaw/core';
import {
  type AgentRegistry,
  type Approvals,
  type AuditEntry,
  type AuditLog,
  OPERATORS_TENANT,
  type RedisKeys,
  type TaskQueue,
  type ValidatorStats,
} from '@openclaw/core';
import type { ValidatorSummary } from '@openclaw/protocol';
import {
  type RedisHealth,
  type ReplicaHealth,
  type ReplicaReport,
  type ReplicaReports,
  summarizeValidators,
} from './replica-reports';

/** How many of the newest audit entries a cluster snapshot carries. */
const AUDIT_TAIL = 25;

/** The cluster at a glance, as `GET /v1/cluster` and `cluster.snapshot` events carry it. */
export interface ClusterStatus {
  at: number;
  /**
   * `cluster` for the operators' tenant: every figure. `tenant` for any other tenant: the replicas'
   * health only, and no figure that spans tenants (traffic, workers, queue, validators, Redis details).
   */
  scope: 'cluster' | 'tenant';
  replicas: (ReplicaHealth & Partial<Omit<ReplicaReport, 'requests' | 'coordinatorLatencyMs'>>)[];
  /** Each replica's request counters since it started, and its latency window. */
  requests: Pick<ReplicaReport, 'replicaId' | 'requests' | 'coordinatorLatencyMs'>[];
  workers: Record<string, string>[];
  agents: unknown[];
  queue: Record<string, number> | null;
  /** The tenant's approvals waiting for a decision. */
  approvalsPending: number;
  redis: RedisHealth;
  /** Governance verdicts and timings by validator, summed over the live replicas and workers. */
  validators: ValidatorSummary[];
  /** The tenant's newest audit entries, oldest first: only for principals with `audit:read`. */
  audit?: AuditEntry[];
}

/** What the cluster status is read from. */
export interface ClusterStatusSources {
  redis: RedisClient;
  keys: RedisKeys;
  replicaReports: ReplicaReports;
  registry: AgentRegistry;
  queue: TaskQueue;
  approvals: Approvals;
  audit: AuditLog;
}

/**
 * Reads the cluster at a glance for `GET /v1/cluster`, `openclaw gateway status` and `cluster.watch`:
 * replicas, workers, agents, queue, Redis, approvals and the audit tail, scoped to who asks.
 */
export class ClusterStatusReader {
  constructor(private readonly deps: ClusterStatusSources) {}

  /**
   * The whole cluster at a glance (`openclaw gateway status`, `cluster.watch`): every live replica's
   * report, the workers, a tenant's agents, the queue and Redis. Only the operators' tenant gets the
   * figures that span tenants; another tenant gets its own agents, approvals and audit, and the
   * replicas' health.
   */
  async clusterStatus(tenant: string, options: { audit?: boolean } = {}): Promise<ClusterStatus> {
    if (tenant !== OPERATORS_TENANT) return this.tenantStatus(tenant, options);
    const view = this.deps.replicaReports;
    const [replicas, workers, agents, queue, redis, pending, audit] = await Promise.all([
      view.replicas(),
      this.workerReports().catch(() => []),
      this.deps.registry.list(tenant).catch(() => []),
      this.deps.queue.counts().catch(() => undefined),
      view.redisHealth(),
      this.deps.approvals.pendingCounts().catch(() => ({}) as Record<string, number>),
      options.audit ? this.deps.audit.tail(tenant, AUDIT_TAIL).catch(() => undefined) : undefined,
    ]);
    return {
      at: Date.now(),
      scope: 'cluster',
      replicas: replicas.map(
        ({ requests: _requests, coordinatorLatencyMs: _latency, validators: _validators, ...rest }) => rest,
      ),
      requests: replicas.map((r) => ({
        replicaId: r.replicaId,
        requests: r.requests,
        coordinatorLatencyMs: r.coordinatorLatencyMs,
      })),
      workers: workers.map((w) => w.info),
      agents,
      queue: queue ?? null,
      approvalsPending: Object.hasOwn(pending, tenant) ? (pending[tenant] ?? 0) : 0,
      redis,
      validators: summarizeValidators([...replicas, ...workers]),
      ...(audit === undefined ? {} : { audit }),
    };
  }

  /** {@link clusterStatus} for a tenant other than the operators'. */
  private async tenantStatus(tenant: string, options: { audit?: boolean }): Promise<ClusterStatus> {
    const [replicas, agents, reachable, pending, audit] = await Promise.all([
      this.deps.replicaReports.replicas(),
      this.deps.registry.list(tenant).catch(() => []),
      this.deps.replicaReports.redisHealth().then((r) => r.reachable),
      this.deps.approvals.pendingCounts().catch(() => ({}) as Record<string, number>),
      options.audit ? this.deps.audit.tail(tenant, AUDIT_TAIL).catch(() => undefined) : undefined,
    ]);
    return {
      at: Date.now(),
      scope: 'tenant',
      replicas: replicas.map(({ replicaId, version, startedAt, ready, draining, at }) => ({
        replicaId,
        version,
        startedAt,
        ready,
        draining,
        at,
      })),
      requests: [],
      workers: [],
      agents,
      queue: null,
      approvalsPending: Object.hasOwn(pending, tenant) ? (pending[tenant] ?? 0) : 0,
      redis: { reachable },
      validators: [],
      ...(audit === undefined ? {} : { audit }),
    };
  }

  /** The live worker processes, from their heartbeats. */
  async workers(): Promise<Record<string, string>[]> {
    return (await this.workerReports()).map((w) => w.info);
  }

  /** The live workers' heartbeats, and the governance counters each reports apart. */
  private async workerReports(): Promise<
    { info: Record<string, string>; validators: Record<string, ValidatorStats> | undefined }[]
  > {
    const ids = await this.deps.redis.zrangebyscore(this.deps.keys.workers(), Date.now(), '+inf');
    const out: { info: Record<string, string>; validators: Record<string, ValidatorStats> | undefined }[] = [];
    for (const id of ids) {
      const { validators, ...info } = await this.deps.redis.hgetall(this.deps.keys.worker(id));
      if (!info.workerId) continue;
      let parsed: Record<string, ValidatorStats> | undefined;
      try {
        parsed = validators === undefined ? undefined : (JSON.parse(validators) as Record<string, ValidatorStats>);
      } catch {
        parsed = undefined;
      }
      out.push({ info, validators: parsed });
    }
    return out;
  }
}
