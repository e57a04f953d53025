/** Latency percentiles (ms), computed exactly from every sample (nearest rank, no histogram). */
export interface Latency {
  samples: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** The q-quantile (nearest rank) of ascending samples. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Summarises latency samples in ms. */
export function latency(samples: readonly number[]): Latency {
  const sorted = Float64Array.from(samples).sort(); // a typed array sorts numerically
  let sum = 0;
  for (const s of sorted) sum += s;
  return {
    samples: sorted.length,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
  };
}
