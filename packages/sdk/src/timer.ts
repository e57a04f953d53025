/** The largest delay `setTimeout` honours; it fires at once for anything larger. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** @internal A delay `setTimeout` takes as meant: negative becomes 0, huge becomes the largest it honours. */
export function clampTimer(ms: number): number {
  return Math.min(Math.max(0, ms), MAX_TIMER_MS);
}
