import { parseTimeSpec } from '@openclaw/protocol';

/** How a time option (`--since`, `--until`) may be written, for option help. */
export const TIME_FORMS = 'a duration ago (90s, 15m, 1h, 7d), an ISO time or epoch ms';

/**
 * `--since` and `--until` as epoch ms, by the shared {@link parseTimeSpec}: a duration counts back
 * from the one moment `now` for both. Checked here so a typo fails before any request, naming the
 * option; an absent option stays absent.
 *
 * @example
 * timeSpan({ since: '1h' }); // → { since: '<an hour ago, epoch ms>', until: undefined }
 */
export function timeSpan(o: { since?: string; until?: string }, now = Date.now()): { since?: string; until?: string } {
  const at = (text: string | undefined, option: string) =>
    text === undefined ? undefined : String(parseTimeSpec(text, option, { now }));
  return { since: at(o.since, '--since'), until: at(o.until, '--until') };
}
