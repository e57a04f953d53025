import { GatewayError } from './gateway-error';

class Parked extends GatewayError {
  constructor(readonly approvalId: string) {
    super('POLICY_DENIED', `waiting for approval '${approvalId}'`, { details: { approvalId } });
  }
}

describe('GatewayError', () => {
  it('carries dispatched: false on the wire and back, and leaves it out when unknown', () => {
    const refused = new GatewayError('AGENT_UNAVAILABLE', 'busy', { retryAfterMs: 100, dispatched: false });
    expect(refused.toWire()).toEqual({
      code: 'AGENT_UNAVAILABLE',
      message: 'busy',
      retryable: true,
      retryAfterMs: 100,
      dispatched: false,
    });
    expect(GatewayError.fromWire(refused.toWire()).dispatched).toBe(false);
    expect(new GatewayError('TIMEOUT', 'late').toWire()).not.toHaveProperty('dispatched');
  });

  it('undispatched() marks a copy and keeps its class, fields, message and stack', () => {
    const original = new Parked('a-1');
    const marked = original.undispatched();
    expect(marked).toBeInstanceOf(Parked);
    expect(marked).not.toBe(original);
    expect(original.dispatched).toBeUndefined();
    expect(marked).toMatchObject({
      code: 'POLICY_DENIED',
      message: "waiting for approval 'a-1'",
      approvalId: 'a-1',
      dispatched: false,
      details: { approvalId: 'a-1' },
    });
    expect(marked.stack).toBe(original.stack);
    expect(marked.undispatched()).toBe(marked);
  });
});
