import { GatewayError, UnexpectedFrameError } from './errors';

describe('GatewayError', () => {
  it('keeps every field of a wire error', () => {
    const error = GatewayError.fromWire({
      code: 'RATE_LIMITED',
      message: 'slow down',
      retryable: true,
      retryAfterMs: 1_500,
      details: { limit: 10 },
    });
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('GatewayError');
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.message).toBe('slow down');
    expect(error.retryable).toBe(true);
    expect(error.retryAfterMs).toBe(1_500);
    expect(error.details).toEqual({ limit: 10 });
  });

  it("takes the wire's retryable over the code's default", () => {
    expect(GatewayError.fromWire({ code: 'TIMEOUT', message: 'late', retryable: false }).retryable).toBe(false);
  });

  it("defaults retryable to the protocol's default for the code", () => {
    expect(new GatewayError('UNAVAILABLE', 'down').retryable).toBe(true);
    expect(new GatewayError('AGENT_NOT_FOUND', 'none').retryable).toBe(false);
    expect(new GatewayError('AGENT_NOT_FOUND', 'none').retryAfterMs).toBeUndefined();
  });

  it('passes through a code a newer gateway added, as not retryable', () => {
    const error = GatewayError.fromWire({ code: 'QUOTA_EXCEEDED', message: 'over quota', retryable: false });
    expect(error.code).toBe('QUOTA_EXCEEDED');
    expect(error.retryable).toBe(false);
  });
});

describe('UnexpectedFrameError', () => {
  it('keeps at most 200 characters of the frame', () => {
    const error = new UnexpectedFrameError('bad', 'x'.repeat(500));
    expect(error.name).toBe('UnexpectedFrameError');
    expect(error.frame).toBe(`${'x'.repeat(200)}…`);
  });
});
