import { traceIdOf } from './ledger-record';

describe('traceIdOf', () => {
  it('takes the trace id of a W3C traceparent', () => {
    expect(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBe(
      '4bf92f3577b34da6a3ce929d0e0e4736',
    );
  });

  it('has none for a missing, malformed or all-zero traceparent', () => {
    expect(traceIdOf(undefined)).toBeUndefined();
    expect(traceIdOf('')).toBeUndefined();
    expect(traceIdOf('00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01')).toBeUndefined();
    expect(traceIdOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined();
    expect(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7')).toBeUndefined();
  });
});
