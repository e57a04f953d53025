import { contextOf, deniedPermission, GatewayError, inSpan, toWireError } from '@openclaw/core';
import type { ActionName, RequestId, WireError } from '@openclaw/protocol';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { HandlerContext } from './handler-context';
import type { Session } from './session';

/** What an action's handler is called with, beyond the context: its connection and request id. */
export type ActionHandler = (
  ctx: HandlerContext,
  scope: { session: Session; id: RequestId | null },
  params: unknown,
) => unknown;

/** Runs `fn` in the action's server span, in the client's trace when it sent a `traceparent`. */
export function inActionSpan<T>(
  ctx: HandlerContext,
  session: Session,
  action: ActionName,
  traceparent: string | undefined,
  fn: () => T,
): T {
  return inSpan(
    `openclaw ${action}`,
    {
      kind: SpanKind.SERVER,
      parent: contextOf(traceparent),
      attributes: {
        'openclaw.action': action,
        'openclaw.replica': ctx.replicaId,
        'openclaw.tenant': session.principal.tenant,
        'openclaw.session': session.id,
      },
    },
    fn,
  );
}

/**
 * Runs an action's handler and sends its one answer when `answer` (an agent reply without an `id`
 * gets none). A handler may answer at once or with a promise; while it is pending the connection
 * counts it as being handled, so a draining replica does not close it under the request.
 * @returns the pending promise, so that the action's span ends when the action does.
 */
export function runAction(
  ctx: HandlerContext,
  session: Session,
  action: ActionName,
  id: RequestId | null,
  handler: ActionHandler,
  params: unknown,
  answer: boolean,
): Promise<void> | undefined {
  let result: unknown;
  try {
    result = handler(ctx, { session, id }, params);
  } catch (error) {
    failed(ctx, session, action, id, error, answer);
    return undefined;
  }
  if (!(result instanceof Promise)) {
    if (answer) respondOk(ctx, session, id, action, result);
    return undefined;
  }
  session.handling += 1;
  return result.then(
    (value) => {
      session.handling -= 1;
      if (answer) respondOk(ctx, session, id, action, value);
    },
    (error: unknown) => {
      session.handling -= 1;
      failed(ctx, session, action, id, error, answer);
    },
  );
}

function failed(
  ctx: HandlerContext,
  session: Session,
  action: string,
  id: RequestId | null,
  error: unknown,
  answer: boolean,
): void {
  if (!(error instanceof GatewayError)) ctx.logger.error({ err: error }, 'unexpected error in a request handler');
  markSpan(error);
  if (answer) respondError(ctx, session, id, action, toWireError(error));
}

/** Marks the action's span as failed, with the error's code (never its details). */
function markSpan(error: unknown): void {
  const code = error instanceof GatewayError ? error.code : 'INTERNAL';
  const span = trace.getActiveSpan();
  span?.setStatus({ code: SpanStatusCode.ERROR, message: code });
  span?.setAttribute('openclaw.error.code', code);
}

/** Sends a request's result (counted, and logged at debug level). */
export function respondOk(
  ctx: HandlerContext,
  session: Session,
  id: RequestId | null,
  action: string,
  result: unknown,
): void {
  try {
    session.send({ id, ok: true, result });
  } catch (error) {
    // A result that cannot be sent (it cannot be serialised) still ends the request.
    if (!(error instanceof GatewayError)) ctx.logger.error({ err: error }, 'unexpected error in a request handler');
    respondError(ctx, session, id, action, toWireError(error));
    return;
  }
  ctx.metrics.countRequest(action, 'ok');
  // One line per answered request at debug level (with the trace and span ids when traced).
  if (ctx.logger.isLevelEnabled('debug')) ctx.logger.debug({ action, outcome: 'ok', session: session.id }, 'request');
}

/** Sends a request's error (counted; a refusal is audited in the connection's tenant). */
export function respondError(
  ctx: HandlerContext,
  session: Session,
  id: RequestId | null,
  action: string,
  error: WireError,
): void {
  if (error.code === 'FORBIDDEN') {
    ctx.audit.record(session.principal.tenant, {
      type: 'authz.denied',
      principal: session.principal.id,
      outcome: 'FORBIDDEN',
      details: { action, ...deniedPermission(error), reason: error.message },
    });
  }
  ctx.metrics.countRequest(action, error.code);
  if (ctx.logger.isLevelEnabled('debug')) {
    ctx.logger.debug({ action, outcome: error.code, session: session.id }, 'request');
  }
  session.send({ id, ok: false, error });
}
