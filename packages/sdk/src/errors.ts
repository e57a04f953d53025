export { GatewayError, type GatewayErrorOptions } from '@openclaw/protocol';

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
