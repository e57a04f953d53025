import { GatewayError } from './gateway-error';
import { parseTimeSpec } from './time-spec';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');

describe('parseTimeSpec', () => {
  it('reads a duration as that long before now', () => {
    expect(parseTimeSpec('90s', 'since', { now: NOW })).toBe(NOW - 90_000);
    expect(parseTimeSpec('15m', 'since', { now: NOW })).toBe(NOW - 900_000);
    expect(parseTimeSpec('1h', 'since', { now: NOW })).toBe(Date.parse('2026-03-01T11:00:00.000Z'));
    expect(parseTimeSpec('7d', 'since', { now: NOW })).toBe(Date.parse('2026-02-22T12:00:00.000Z'));
    expect(parseTimeSpec('2w', 'since', { now: NOW })).toBe(Date.parse('2026-02-15T12:00:00.000Z'));
    expect(parseTimeSpec(' 30m ', 'since', { now: NOW })).toBe(NOW - 1_800_000);
  });

  it("reads a duration as that long after now with direction 'future'", () => {
    expect(parseTimeSpec('90d', '--expires', { now: NOW, direction: 'future' })).toBe(
      Date.parse('2026-05-30T12:00:00.000Z'),
    );
    expect(parseTimeSpec('45s', '--expires', { now: NOW, direction: 'future' })).toBe(NOW + 45_000);
  });

  it('reads ISO times and epoch milliseconds as they are, whatever the direction', () => {
    expect(parseTimeSpec('2026-02-01T08:30:00Z', 'since', { now: NOW })).toBe(Date.UTC(2026, 1, 1, 8, 30));
    expect(parseTimeSpec('2026-02-01', 'until', { now: NOW })).toBe(Date.UTC(2026, 1, 1));
    expect(parseTimeSpec('2026-02-01T08:30:00.250+01:00', 'since')).toBe(Date.UTC(2026, 1, 1, 7, 30, 0, 250));
    expect(parseTimeSpec('1767225600000', 'since', { now: NOW })).toBe(1_767_225_600_000);
    expect(parseTimeSpec('1767225600000', '--expires', { now: NOW, direction: 'future' })).toBe(1_767_225_600_000);
    expect(parseTimeSpec('0', 'since', { now: NOW })).toBe(0);
  });

  it('refuses anything else with BAD_REQUEST naming the field and the accepted forms', () => {
    for (const text of ['', 'soon', '1 h', '1.5h', '1y', '-1h', 'h', 'March 7', '2026-13-45', '99999999999999999']) {
      let thrown: unknown;
      try {
        parseTimeSpec(text, 'since', { now: NOW });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(GatewayError);
      expect(thrown).toMatchObject({
        code: 'BAD_REQUEST',
        message: `since: expected a duration such as 15m, 1h or 7d, an ISO time, or epoch milliseconds; got ${JSON.stringify(text)}`,
      });
    }
  });

  it('names the field it was given and shortens a long value in the message', () => {
    expect(() => parseTimeSpec(`${'x'.repeat(100)}`, '--until')).toThrow(
      `--until: expected a duration such as 15m, 1h or 7d, an ISO time, or epoch milliseconds; got "${'x'.repeat(40)}…"`,
    );
  });
});
