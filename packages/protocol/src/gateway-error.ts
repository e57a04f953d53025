import { type ErrorCode, RETRYABLE_BY_DEFAULT } from './error-codes';
import type { WireError } from './primitives';

/** Options of a {@link GatewayError}. */
export interface GatewayErrorOptions {
  /** Whether the same request may succeed if sent again. Defaults to the protocol's default for the code. */
  retryable?: boolean;
  /** How long to wait before retrying (`RATE_LIMITED`). */
  retryAfterMs?: number;
  /** Machine-readable details, e.g. the failing fields of a `BAD_REQUEST`. */
  details?: unknown;
  /**
   * `false` when the request is known not to have reached any agent (a `coordinator` call refused
   * before dispatch): sending it again cannot run the task twice. Undefined when unknown.
   */
  dispatched?: false;
  /** The underlying error, for logs. Never sent on the wire. */
  cause?: unknown;
}

/**
 * An error with a stable protocol code, shared by the gateway (which sends it) and clients (which
 * receive it, or raise it themselves for the same situation: `TIMEOUT`, `UNAVAILABLE`, `CANCELED`).
 * Its message goes to clients: never put internals in it; put them in `cause`.
 *
 * `code` is one of the protocol's {@link ErrorCode}s; a newer gateway may send a code this version
 * does not list yet, and it is passed through as it came.
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
  /** Machine-readable details. */
  readonly details: unknown;
  /** `false` when no agent received the task, so sending the call again cannot run it twice. */
  readonly dispatched: false | undefined;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT[code] ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
    this.dispatched = options.dispatched;
  }

  /** This error, marked as raised before any agent received the task (see {@link GatewayError.dispatched}). */
  undispatched(): this {
    if (this.dispatched === false) return this;
    // A copy of the same class (a subclass keeps its type and fields), with the same message and stack.
    const copy = Object.assign(Object.create(Object.getPrototypeOf(this)) as this, this, { dispatched: false });
    for (const key of ['message', 'stack', 'cause'] as const) {
      const own = Object.getOwnPropertyDescriptor(this, key);
      // Newer V8 keeps `stack` behind an accessor bound to the original error: copy its value.
      if (own) Object.defineProperty(copy, key, { value: this[key], writable: true, configurable: true });
    }
    return copy;
  }

  /** A {@link GatewayError} built from the `error` object of an error response. */
  static fromWire(wire: WireError): GatewayError {
    return new GatewayError(wire.code as ErrorCode, wire.message, {
      retryable: wire.retryable,
      retryAfterMs: wire.retryAfterMs,
      details: wire.details,
      dispatched: wire.dispatched === false ? false : undefined,
    });
  }

  /** The error as it goes on the wire. */
  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.retryAfterMs !== undefined) wire.retryAfterMs = this.retryAfterMs;
    if (this.details !== undefined) wire.details = this.details;
    if (this.dispatched === false) wire.dispatched = false;
    return wire;
  }
}
