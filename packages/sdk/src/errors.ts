import { type ErrorCode, RETRYABLE_BY_DEFAULT, type WireError } from '@openclaw/protocol';

/** Options of a {@link GatewayError}. */
export interface GatewayErrorOptions {
  /** Whether the same request may succeed if sent again. Defaults to the protocol's default for the code. */
  retryable?: boolean;
  /** How long to wait before retrying (`RATE_LIMITED`). */
  retryAfterMs?: number;
  /** Machine-readable details, e.g. the failing fields of a `BAD_REQUEST`. */
  details?: unknown;
  /** The underlying error, for logs. */
  cause?: unknown;
}

/**
 * An error with a stable protocol code: either reported by the gateway in an error response, or raised by
 * the client for the same situation (`TIMEOUT` when no response came in time, `UNAVAILABLE` when the
 * connection dropped, `CANCELED` when a call was aborted).
 *
 * `code` is one of the protocol's {@link ErrorCode}s; a newer gateway may send a code this SDK does not
 * list yet, and it is passed through as it came.
 *
 * @example
 * try {
 *   await client.call('summarizer', 'summarize', { text });
 * } catch (error) {
 *   if (error instanceof GatewayError && error.retryable) scheduleRetry(error.retryAfterMs ?? 1_000);
 *   else throw error;
 * }
 */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  /** The protocol error code, e.g. `AGENT_NOT_FOUND`. */
  readonly code: ErrorCode;
  /** Whether sending the same request again may succeed. */
  readonly retryable: boolean;
  /** How long to wait before retrying, when the gateway said so. */
  readonly retryAfterMs: number | undefined;
  /** Machine-readable details, as the gateway sent them. */
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT[code] ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
  }

  /** A {@link GatewayError} built from the `error` object of an error response. */
  static fromWire(wire: WireError): GatewayError {
    return new GatewayError(wire.code as ErrorCode, wire.message, {
      retryable: wire.retryable,
      retryAfterMs: wire.retryAfterMs,
      details: wire.details,
    });
  }
}

/**
 * The gateway sent something this client cannot use: a frame that is not JSON, not an object, binary,
 * or does not match the protocol. Reported on the client's `'error'` event; the connection stays open.
 */
export class UnexpectedFrameError extends Error {
  override readonly name = 'UnexpectedFrameError';
  /** The start of the offending frame (at most 200 characters), for logs. */
  readonly frame: string;

  constructor(message: string, frame: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.frame = frame.length > 200 ? `${frame.slice(0, 200)}…` : frame;
  }
}
