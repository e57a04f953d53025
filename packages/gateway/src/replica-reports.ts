import { hostname } from 'node:os';
import type { RedisClient, RedisKeys, ValidatorStats } from '@openclaw/core';
import { isCluster, TIMINGS } from '@openclaw/core';
import type { ValidatorSummary } from '@openclaw/protocol';
import type { LatencySummary } from './replica-counters';

const REPORT_TTL_MS = 3 * TIMINGS.replicaReportIntervalMs;

/** What a replica reports about itself to the cluster (for `openclaw gateway status` and `metrics`). */
export interface ReplicaReport {
  replicaId: string;
  version: string;
  host: string;
  pid: number;
  port: number;
  startedAt: number;
  ready: boolean;
  draining: boolean;
  connections: { agent: number; client: number };
  inFlight: number;
  /** Requests answered since start, by action and outcome. */
  requests: Record<string, Record<string, number>>;
  coordinatorLatencyMs: LatencySummary;
  /** Governance verdicts since start (or since the policy last changed), by validator. */
  validators?: Record<string, ValidatorStats>;
  /** When the report was written. */
  at: number;
}

/** What every tenant may see of a replica: whether it serves. */
export type ReplicaHealth = Pick<ReplicaReport, 'replicaId' | 'version' | 'startedAt' | 'ready' | 'draining' | 'at'>;

/** Redis state as `gateway status` shows it. */
export interface RedisHealth {
  reachable: boolean;
  version?: string;
  role?: string;
  uptimeSeconds?: number;
  usedMemoryBytes?: number;
  maxmemoryPolicy?: string;
  aofEnabled?: boolean;
  connectedClients?: number;
  /** On Redis Cluster: how many masters; the figures above are then summed over them (memory, clients). */
  masters?: number;
}

/**
 * The cluster's view of itself: every replica writes a short report to Redis every 2 s (kept 6 s),
 * so any replica can answer for all of them without calling the others.
 */
export class ReplicaReports {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly report: () => Omit<ReplicaReport, 'host' | 'pid' | 'at'>,
  ) {}

  start(): void {
    void this.publish();
    this.timer = setInterval(() => void this.publish(), TIMINGS.replicaReportIntervalMs);
    this.timer.unref();
  }

  /** Stops reporting and withdraws this replica's report. */
  async stop(replicaId: string): Promise<void> {
    clearInterval(this.timer);
    await this.redis
      .multi()
      .zrem(this.reportsKey(), replicaId)
      .del(this.reportKey(replicaId))
      .exec()
      .catch(() => undefined);
  }

  /** The live replicas' reports, by replica id. */
  async replicas(): Promise<ReplicaReport[]> {
    const now = Date.now();
    const ids = await this.redis.zrangebyscore(this.reportsKey(), now, '+inf');
    if (ids.length === 0) return [];
    const texts = await this.redis.mget(ids.map((id) => this.reportKey(id)));
    const out: ReplicaReport[] = [];
    for (const text of texts) {
      if (!text) continue;
      try {
        out.push(JSON.parse(text) as ReplicaReport);
      } catch {
        // A report from another version: skipped.
      }
    }
    return out.sort((a, b) => (a.replicaId < b.replicaId ? -1 : 1));
  }

  /** What Redis says about itself (INFO); on Redis Cluster, what its masters say, together. */
  async redisHealth(): Promise<RedisHealth> {
    const clients = isCluster(this.redis) ? this.redis.nodes('master') : [this.redis];
    let texts: string[];
    try {
      texts = await Promise.all(clients.map((client) => client.info()));
    } catch {
      return { reachable: false };
    }
    if (texts.length === 0) return { reachable: false };
    const infos = texts.map(
      (text) =>
        (name: string): string | undefined =>
          new RegExp(`^${name}:(.*)$`, 'm').exec(text)?.[1]?.trim(),
    );
    const first = infos[0]!;
    const sum = (name: string): number | undefined => {
      const values = infos.map((field) => field(name));
      return values.every((v) => v === undefined) ? undefined : values.reduce((a, v) => a + Number(v ?? 0), 0);
    };
    const same = (name: string): string | undefined => {
      const values = new Set(infos.map((field) => field(name)));
      return values.size === 1 ? first(name) : 'mixed';
    };
    const health: RedisHealth = {
      reachable: true,
      version: same('redis_version'),
      role: isCluster(this.redis) ? 'cluster' : first('role'),
      uptimeSeconds: Math.min(...infos.map((field) => Number(field('uptime_in_seconds') ?? 0))),
      usedMemoryBytes: sum('used_memory'),
      maxmemoryPolicy: same('maxmemory_policy'),
      aofEnabled: infos.every((field) => field('aof_enabled') === '1'),
      connectedClients: sum('connected_clients'),
    };
    if (isCluster(this.redis)) health.masters = clients.length;
    return health;
  }

  private async publish(): Promise<void> {
    if (this.redis.status !== 'ready') return;
    const report: ReplicaReport = { ...this.report(), host: hostname(), pid: process.pid, at: Date.now() };
    await this.redis
      .multi()
      .set(this.reportKey(report.replicaId), JSON.stringify(report), 'PX', REPORT_TTL_MS)
      .zadd(this.reportsKey(), report.at + REPORT_TTL_MS, report.replicaId)
      .zremrangebyscore(this.reportsKey(), '-inf', report.at)
      .exec()
      .catch(() => undefined);
  }

  private reportsKey(): string {
    return this.keys.replicaReports();
  }

  private reportKey(replicaId: string): string {
    return this.keys.replicaReport(replicaId);
  }
}

/** Sums the validator counters of replicas (sync calls) and workers (async attempts), by validator name. */
export function summarizeValidators(
  reports: readonly { validators?: Record<string, ValidatorStats> | undefined }[],
): ValidatorSummary[] {
  const sums = new Map<string, ValidatorSummary & { totalMs: number }>();
  for (const report of reports) {
    for (const [validator, s] of Object.entries(report.validators ?? {})) {
      let sum = sums.get(validator);
      if (!sum) {
        sum = {
          validator,
          checks: 0,
          allows: 0,
          denies: 0,
          redactions: 0,
          approvals: 0,
          wouldDeny: 0,
          failures: 0,
          overBudget: 0,
          meanMs: 0,
          maxMs: 0,
          totalMs: 0,
        };
        sums.set(validator, sum);
      }
      sum.checks += s.checks;
      sum.denies += s.denies;
      sum.redactions += s.redactions;
      sum.approvals += s.approvals;
      sum.wouldDeny += s.wouldDeny;
      sum.failures += s.failures;
      sum.overBudget += s.overBudget;
      sum.totalMs += s.totalMs;
      sum.maxMs = Math.max(sum.maxMs, s.maxMs);
    }
  }
  return [...sums.values()]
    .sort((a, b) => (a.validator < b.validator ? -1 : 1))
    .map(({ totalMs, ...sum }) => ({
      ...sum,
      // A failure counts as the verdict its fail mode gave; a dry run's would-be deny decided nothing.
      allows: Math.max(0, sum.checks - sum.denies - sum.redactions - sum.approvals - sum.wouldDeny),
      meanMs: sum.checks === 0 ? 0 : Math.round((totalMs / sum.checks) * 100) / 100,
      maxMs: Math.round(sum.maxMs * 100) / 100,
    }));
}
