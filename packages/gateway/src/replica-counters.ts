/** Latency percentiles over the most recent calls. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** A snapshot of a replica's counters, as `GET /v1/metrics` and `openclaw gateway metrics` show them. */
export interface MetricsSnapshot {
  replicaId: string;
  uptimeMs: number;
  connections: { current: number; total: number; rejected: number };
  /** Requests by action and outcome (`ok` or an error code). */
  requests: Record<string, Record<string, number>>;
  /** Latency of `coordinator` calls in milliseconds, over the last {@link LATENCY_WINDOW} calls. */
  coordinatorLatencyMs: LatencySummary;
  closes: Record<string, number>;
  inFlight: number;
}

/** How many recent `coordinator` latencies the percentiles are computed over. */
export const LATENCY_WINDOW = 10_000;

/**
 * In-process counters of one replica. Cheap on the hot path: a map increment and a ring-buffer write.
 * `GET /v1/metrics` shows them as JSON; `/metrics` exports them to Prometheus (gateway-prometheus.ts).
 */
export class ReplicaCounters {
  readonly startedAt = Date.now();
  connectionsCurrent = 0;
  connectionsTotal = 0;
  connectionsRejected = 0;
  private readonly requests = new Map<string, Map<string, number>>();
  private readonly closes = new Map<string, number>();
  private readonly latencies = new Float64Array(LATENCY_WINDOW);
  private latencyCount = 0;

  /** Counts one answered request. */
  countRequest(action: string, outcome: string): void {
    let byOutcome = this.requests.get(action);
    if (!byOutcome) {
      byOutcome = new Map();
      this.requests.set(action, byOutcome);
    }
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
  }

  /** Told of each `coordinator` call's latency too (the Prometheus histogram). */
  onCall: ((ms: number) => void) | undefined;

  /** Records the latency of one `coordinator` call. */
  observeCoordinator(ms: number): void {
    this.onCall?.(ms);
    this.latencies[this.latencyCount % LATENCY_WINDOW] = ms;
    this.latencyCount += 1;
  }

  /** Requests answered so far, by action and outcome. */
  requestCounts(): ReadonlyMap<string, ReadonlyMap<string, number>> {
    return this.requests;
  }

  /** Sockets the gateway closed so far, by close code. */
  closeCounts(): ReadonlyMap<string, number> {
    return this.closes;
  }

  /** Counts a socket closed by the gateway, by close code. */
  countClose(code: number): void {
    const key = String(code);
    this.closes.set(key, (this.closes.get(key) ?? 0) + 1);
  }

  snapshot(replicaId: string, inFlight: number): MetricsSnapshot {
    const requests: Record<string, Record<string, number>> = {};
    for (const [action, byOutcome] of this.requests) requests[action] = Object.fromEntries(byOutcome);
    return {
      replicaId,
      uptimeMs: Date.now() - this.startedAt,
      connections: {
        current: this.connectionsCurrent,
        total: this.connectionsTotal,
        rejected: this.connectionsRejected,
      },
      requests,
      coordinatorLatencyMs: this.latencySummary(),
      closes: Object.fromEntries(this.closes),
      inFlight,
    };
  }

  private latencySummary(): LatencySummary {
    const n = Math.min(this.latencyCount, LATENCY_WINDOW);
    if (n === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0 };
    const sorted = this.latencies.slice(0, n).sort();
    const at = (q: number) => round(sorted[Math.min(n - 1, Math.ceil(q * n) - 1)]!);
    return { count: this.latencyCount, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(sorted[n - 1]!) };
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
