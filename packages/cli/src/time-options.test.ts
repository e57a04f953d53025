import { GatewayError } from '@openclaw/protocol';
import { parseExpires } from './commands/apikey-commands';
import { timeSpan } from './time-options';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');

describe('timeSpan', () => {
  it('reads --since and --until as durations ago, ISO times or epoch ms, from one moment', () => {
    expect(timeSpan({ since: '1h', until: '30m' }, NOW)).toEqual({
      since: String(Date.parse('2026-03-01T11:00:00.000Z')),
      until: String(Date.parse('2026-03-01T11:30:00.000Z')),
    });
    expect(timeSpan({ since: '2026-02-28T00:00:00Z', until: '1772280000000' }, NOW)).toEqual({
      since: String(Date.UTC(2026, 1, 28)),
      until: '1772280000000',
    });
    expect(timeSpan({}, NOW)).toEqual({ since: undefined, until: undefined });
  });

  it('refuses a bad value naming the option', () => {
    expect(() => timeSpan({ since: 'yesterday' }, NOW)).toThrow(
      new GatewayError(
        'BAD_REQUEST',
        '--since: expected a duration such as 15m, 1h or 7d, an ISO time, or epoch milliseconds; got "yesterday"',
      ),
    );
    expect(() => timeSpan({ since: '1h', until: '1 h' }, NOW)).toThrow(/^--until: expected a duration/);
  });
});

describe('parseExpires', () => {
  it('reads a duration as that long ahead, and an ISO time or epoch ms as it is', () => {
    expect(parseExpires('90d', NOW)).toBe(Date.parse('2026-05-30T12:00:00.000Z'));
    expect(parseExpires('2w', NOW)).toBe(Date.parse('2026-03-15T12:00:00.000Z'));
    expect(parseExpires('2027-01-01', NOW)).toBe(Date.UTC(2027, 0, 1));
    expect(parseExpires(String(NOW + 1), NOW)).toBe(NOW + 1);
  });

  it('refuses a time in the past and anything else, naming --expires', () => {
    expect(() => parseExpires('2020-01-01', NOW)).toThrow('--expires: 2020-01-01 is in the past');
    expect(() => parseExpires('soon', NOW)).toThrow(
      '--expires: expected a duration such as 15m, 1h or 7d, an ISO time, or epoch milliseconds; got "soon"',
    );
  });
});
