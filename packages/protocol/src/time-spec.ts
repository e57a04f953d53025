import { GatewayError } from './gateway-error';

/** Milliseconds in one unit of a {@link parseTimeSpec} duration: seconds, minutes, hours, days, weeks. */
const DURATION_UNITS: Readonly<Record<string, number>> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** The furthest a JavaScript `Date` reaches either side of the epoch, in milliseconds. */
const MAX_TIME_MS = 8.64e15;

/** Options of {@link parseTimeSpec}. */
export interface TimeSpecOptions {
  /** The time a duration counts from, in epoch milliseconds. Default: `Date.now()`. */
  now?: number;
  /**
   * Which way a duration counts from `now`: `'past'` (the default) for times such as `since=1h`, one
   * hour ago; `'future'` for deadlines such as `--expires 90d`, ninety days ahead.
   */
  direction?: 'past' | 'future';
}

/**
 * Parses a time as people and scripts write it: a duration (`90s`, `15m`, `1h`, `7d`, `2w`: that long
 * before `now`, or after it with `direction: 'future'`), an ISO time (`2026-03-01`,
 * `2026-03-01T12:00:00Z`) or epoch milliseconds (`1767225600000`). The one parser of every time the
 * gateway's HTTP API and the CLI take.
 *
 * @param field what the time is, named in the error: `since` on the wire, `--since` on the command line.
 * @returns epoch milliseconds.
 * @throws GatewayError `BAD_REQUEST`, naming `field` and the accepted forms, for anything else.
 * @example
 * parseTimeSpec('1h', 'since', { now: Date.parse('2026-03-01T12:00:00Z') }); // → Date.parse('2026-03-01T11:00:00Z')
 * parseTimeSpec('90d', '--expires', { direction: 'future' }); // → ninety days from now
 */
export function parseTimeSpec(text: string, field: string, options: TimeSpecOptions = {}): number {
  const spec = text.trim();
  let ms = Number.NaN;
  const duration = /^(\d+)([smhdw])$/.exec(spec);
  if (duration) {
    const length = Number(duration[1]) * DURATION_UNITS[duration[2]!]!;
    const now = options.now ?? Date.now();
    ms = options.direction === 'future' ? now + length : now - length;
  } else if (/^\d+$/.test(spec)) {
    ms = Number(spec);
  } else if (/^\d{4}-\d{2}-\d{2}(?:$|[T ])/.test(spec)) {
    // Only ISO shapes: `Date.parse` alone also takes engine-specific forms such as `March 7`.
    ms = Date.parse(spec);
  }
  if (!Number.isFinite(ms) || Math.abs(ms) > MAX_TIME_MS) {
    const shown = spec.length > 40 ? `${spec.slice(0, 40)}…` : spec;
    throw new GatewayError(
      'BAD_REQUEST',
      `${field}: expected a duration such as 15m, 1h or 7d, an ISO time, or epoch milliseconds; got ${JSON.stringify(shown)}`,
    );
  }
  return ms;
}
