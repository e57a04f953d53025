/** The request counters a `cluster.snapshot` carries for one replica. */
export interface ReplicaRequests {
  replicaId: string;
  /** Requests answered since the replica started, by action and outcome (`ok` or an error code). */
  requests: Record<string, Record<string, number>>;
  coordinatorLatencyMs?: { count: number; p50: number; p90: number; p99: number; max: number };
}

/** One point of the throughput and latency charts. */
export interface RatePoint {
  at: number;
  requestsPerSec: number;
  errorsPerSec: number;
  /** Latency of `coordinator` calls over the replicas' recent windows; null when none was made. */
  p50Ms: number | null;
  p99Ms: number | null;
}

function totals(replica: ReplicaRequests): { all: number; errors: number } {
  let all = 0;
  let errors = 0;
  for (const outcomes of Object.values(replica.requests)) {
    for (const [outcome, count] of Object.entries(outcomes)) {
      all += count;
      if (outcome !== 'ok') errors += count;
    }
  }
  return { all, errors };
}

/**
 * The rates between two snapshots. Counters only grow while a replica lives: a replica that is new,
 * or restarted (its counters went down), adds nothing to this interval rather than its whole history.
 * p50 is the mean of the replicas' p50s weighted by their calls, p99 the worst replica's.
 */
export function ratePoint(
  previous: { at: number; requests: readonly ReplicaRequests[] },
  current: { at: number; requests: readonly ReplicaRequests[] },
): RatePoint {
  const seconds = Math.max((current.at - previous.at) / 1000, 0.001);
  const before = new Map(previous.requests.map((r) => [r.replicaId, totals(r)]));
  let all = 0;
  let errors = 0;
  let weighted = 0;
  let calls = 0;
  let p99: number | null = null;
  for (const replica of current.requests) {
    const now = totals(replica);
    const then = before.get(replica.replicaId);
    if (then && now.all >= then.all) {
      all += now.all - then.all;
      errors += Math.max(0, now.errors - then.errors);
    }
    const latency = replica.coordinatorLatencyMs;
    if (latency && latency.count > 0) {
      weighted += latency.p50 * latency.count;
      calls += latency.count;
      p99 = Math.max(p99 ?? 0, latency.p99);
    }
  }
  return {
    at: current.at,
    requestsPerSec: all / seconds,
    errorsPerSec: errors / seconds,
    p50Ms: calls === 0 ? null : weighted / calls,
    p99Ms: p99,
  };
}
