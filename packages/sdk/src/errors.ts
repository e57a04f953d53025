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

/**
 * Thrown by an agent's handler to escalate its task to a human (an async task or workflow step): the
 * task waits in `input-required` with this message and details as its question, until an operator
 * answers (`openclaw task respond`) or the escalation times out. In a sync call the caller gets it as
 * an `AGENT_ERROR` with `details.agentCode: "INPUT_REQUIRED"`.
 * @example
 * agent.handle('answer', async (query) => {
 *   if (query.question.includes('refund')) throw new InputRequired('refunds need a human', { customer: query.customer });
 *   return faq(query);
 * });
 */
export class InputRequired extends Error {
  override readonly name = 'InputRequired';
  readonly code = 'INPUT_REQUIRED';
  readonly retryable = false;
  constructor(
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}
