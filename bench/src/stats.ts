/** Exact percentiles of latency samples, and throughput. */
export interface RunStats {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
}

/** The q-quantile (nearest rank) of ascending samples. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Summarises latency samples (ms) gathered over `seconds`. */
export function summarise(samples: number[], seconds: number): RunStats {
  const sorted = Float64Array.from(samples).sort();
  return {
    requests: samples.length,
    seconds,
    rps: samples.length / seconds,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
  };
}
