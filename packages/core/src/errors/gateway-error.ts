import { GatewayError, type WireError } from '@openclaw/protocol';

/**
 * The wire form of any thrown value. Errors that are not {@link GatewayError}s become `INTERNAL`
 * with a generic message, so nothing internal leaks to a client.
 */
export function toWireError(error: unknown): WireError {
  if (error instanceof GatewayError) return error.toWire();
  return { code: 'INTERNAL', message: 'internal error', retryable: false };
}

/** A {@link GatewayError} rebuilt from its wire form (for errors that crossed the bus). */
export function fromWireError(wire: WireError): GatewayError {
  return GatewayError.fromWire(wire);
}
