/** The bounds of an exponential backoff. */
export interface BackoffOptions {
  /** The cap of the first attempt (attempt 0), in milliseconds. */
  initialDelayMs: number;
  /** The largest cap, in milliseconds. */
  maxDelayMs: number;
}

/**
 * The upper bound of the delay before attempt `attempt` (0-based): `min(maxDelayMs, initialDelayMs * 2^attempt)`.
 *
 * @example
 * backoffCap(3, { initialDelayMs: 100, maxDelayMs: 10_000 }); // 800
 */
export function backoffCap(attempt: number, options: BackoffOptions): number {
  // 2 ** attempt overflows to Infinity for large attempts, which min() then caps.
  return Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.max(0, attempt));
}

/**
 * The delay before attempt `attempt` (0-based), with full jitter: uniform in `[0, backoffCap(attempt)]`.
 * Full jitter spreads the clients of a restarting replica across the whole window, so they do not
 * reconnect in waves.
 *
 * @param random - a source of numbers in `[0, 1)`; `Math.random` unless a test pins it.
 * @example
 * const delayMs = backoffDelay(attempt, { initialDelayMs: 500, maxDelayMs: 30_000 });
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCap(attempt, options));
}
