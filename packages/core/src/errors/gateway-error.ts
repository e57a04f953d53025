import { type ErrorCode, RETRYABLE_BY_DEFAULT, type WireError } from '@openclaw/protocol';

/** Options of a {@link GatewayError}. */
export interface GatewayErrorOptions {
  retryable?: boolean;
  retryAfterMs?: number;
  details?: unknown;
  cause?: unknown;
}

/**
 * An error with a stable protocol code. Its message is safe to show to a client: never put
 * internals (stack traces, hostnames, Redis replies) in it; put them in `cause` for the logs.
 *
 * @example
 * throw new GatewayError('AGENT_NOT_FOUND', "no agent named 'my-agent'");
 */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT[code];
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
  }

  /** The error as it goes on the wire. */
  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.retryAfterMs !== undefined) wire.retryAfterMs = this.retryAfterMs;
    if (this.details !== undefined) wire.details = this.details;
    return wire;
  }
}

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
  return new GatewayError(wire.code as ErrorCode, wire.message, {
    retryable: wire.retryable,
    retryAfterMs: wire.retryAfterMs,
    details: wire.details,
  });
}
