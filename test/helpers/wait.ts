/** A value that JavaScript treats as true in a condition. */
export type Truthy<TValue> = Exclude<TValue, false | 0 | 0n | '' | null | undefined>;

/** Options for {@link waitFor}. */
export interface WaitForOptions {
  /** What is awaited, in words; it names the condition in the timeout error. */
  what: string;
  /** How long to keep polling, in milliseconds. Default 10 000. */
  timeoutMs?: number;
  /** Pause between two attempts, in milliseconds. Default 50. */
  intervalMs?: number;
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Settles like `promise`, or rejects with `timed out after <ms> ms waiting for <what>` if it has not
 * settled by then. The timer is cleared either way, so it never holds the test process open.
 */
export function withTimeout<TValue>(promise: Promise<TValue>, timeoutMs: number, what: string): Promise<TValue> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Calls `fn` until it returns (or resolves to) a truthy value, and resolves with that value.
 *
 * A call that throws or rejects counts as "not yet", so `fn` may probe something that is still
 * coming up; the last such error is quoted if the wait times out. A call that hangs is cut off at
 * the deadline. Rejects with a message naming `what`.
 *
 * @example
 * ```ts
 * const count = await waitFor(async () => Number(await redis.get('connected')) === 3, {
 *   what: 'three connected agents',
 *   timeoutMs: 5_000,
 * });
 * ```
 */
export async function waitFor<TValue>(
  fn: () => TValue | Promise<TValue>,
  options: WaitForOptions,
): Promise<Truthy<TValue>> {
  const { what, timeoutMs = 10_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let attempts = 0;
  for (;;) {
    attempts += 1;
    const remaining = deadline - Date.now();
    try {
      const value = await withTimeout(Promise.resolve().then(fn), Math.max(remaining, 1), what);
      if (value) return value as Truthy<TValue>;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await delay(Math.min(intervalMs, left));
  }
  const cause = lastError === undefined ? '' : `; last error: ${describeError(lastError)}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${attempts} attempts${cause})`);
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
