import { contextOf, deniedPermission, GatewayError, inSpan, toWireError } from '@openclaw/core';
import {
  ACTION_PARAMS,
  type ActionName,
  AGENT_REPLY_ACTIONS,
  describeIssues,
  type FieldIssue,
  isActionName,
  nestingProblem,
  type RequestId,
  RequestIdSchema,
  type WireError,
} from '@openclaw/protocol';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { z } from 'zod';
import { ACTION_HANDLERS, type HandlerContext } from './action-handlers';
import type { Session } from './session';

/**
 * Handles one inbound frame: parses and validates it, applies the connection's rate limit, runs the
 * action and sends exactly one response (agent replies only when they carry an id). Nothing a client
 * sends can throw out of here: every failure becomes an error response and the socket stays open.
 */
export function handleFrame(ctx: HandlerContext, session: Session, data: Buffer, isBinary: boolean): void {
  if (isBinary) {
    respondError(ctx, session, null, 'frame', {
      code: 'BAD_REQUEST',
      message: 'binary frames are not supported: send one UTF-8 JSON object per text frame',
      retryable: false,
    });
    return;
  }
  let frame: unknown;
  try {
    frame = JSON.parse(data.toString('utf8'));
  } catch (error) {
    respondError(ctx, session, null, 'frame', {
      code: 'BAD_REQUEST',
      message: 'the frame is not valid JSON',
      retryable: false,
      details: [{ field: '', message: (error as Error).message }],
    });
    return;
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    respondError(ctx, session, null, 'frame', {
      code: 'BAD_REQUEST',
      message: 'a frame must be a JSON object',
      retryable: false,
      details: [{ field: '', message: 'expected an object' }],
    });
    return;
  }
  const { action, id: rawId, traceparent, ...params } = frame as Record<string, unknown>;
  const idParse = rawId === undefined ? undefined : RequestIdSchema.safeParse(rawId);
  const id: RequestId | null = idParse?.success ? idParse.data : null;
  if (idParse && !idParse.success) {
    respondError(ctx, session, null, 'frame', {
      code: 'BAD_REQUEST',
      message: 'id must be a string of at most 128 characters or a number',
      retryable: false,
      details: [{ field: 'id', message: idParse.error.issues[0]?.message ?? 'invalid' }],
    });
    return;
  }
  if (typeof action !== 'string') {
    respondError(ctx, session, id, 'frame', {
      code: 'BAD_REQUEST',
      message: 'action must be a string',
      retryable: false,
      details: [{ field: 'action', message: action === undefined ? 'required' : 'expected a string' }],
    });
    return;
  }
  if (!isActionName(action)) {
    respondError(ctx, session, id, 'unknown', {
      code: 'UNKNOWN_ACTION',
      message: `unknown action ${JSON.stringify(action.slice(0, 64))}`,
      retryable: false,
    });
    return;
  }
  const isReply = AGENT_REPLY_ACTIONS.has(action);
  // A request that arrives after the gateway began closing the connection is not handled: its answer
  // could not be sent, and the client may then safely send it again elsewhere (a 1001 promises that).
  // Agent replies still are: a caller elsewhere waits for them.
  if (session.closing && !isReply) return;
  const answer = !isReply || rawId !== undefined;
  if (session.leaving && !isReply && action !== 'task.cancel') {
    // The replica drains: this connection closes once its calls in flight are answered (which it may
    // still cancel).
    respondError(ctx, session, id, action, {
      code: 'UNAVAILABLE',
      message: 'this replica is draining: reconnect to another (the connection closes when its calls are answered)',
      retryable: true,
      ...notHandled(action),
    });
    return;
  }
  // Agent replies are not rate limited: dropping an agent's result would fail a caller elsewhere.
  if (!isReply) {
    const waitMs = session.takeToken();
    if (waitMs > 0) {
      respondError(ctx, session, id, action, {
        code: 'RATE_LIMITED',
        message: 'too many requests on this connection',
        retryable: true,
        retryAfterMs: waitMs,
        ...notHandled(action),
      });
      return;
    }
  }
  if (ctx.auditRequired && !isReply && !ctx.audit.healthy()) {
    respondError(ctx, session, id, action, {
      code: 'UNAVAILABLE',
      message: 'the audit trail cannot be written now; refusing to serve unaudited',
      retryable: true,
      ...notHandled(action),
    });
    return;
  }
  const tooDeep = nestingProblem(params, ctx.limits.maxJsonDepth);
  if (tooDeep) {
    refuseTooDeep(ctx, session, action, id, params, tooDeep, answer);
    return;
  }
  // zod drops a record key named `__proto__`: a schema declared for that task would silently not apply.
  const schemas = action === 'register' ? params.inputSchemas : undefined;
  const parsed =
    typeof schemas === 'object' && schemas !== null && Object.hasOwn(schemas, '__proto__')
      ? PROTO_SCHEMA_ISSUE
      : ACTION_PARAMS[action].safeParse(params);
  if (!parsed.success) {
    const details = describeIssues(parsed.error);
    if (answer) {
      respondError(ctx, session, id, action, {
        code: 'BAD_REQUEST',
        message: `invalid ${action}: ${details.map((d) => `${d.field || '(frame)'}: ${d.message}`).join('; ')}`,
        retryable: false,
        details,
      });
    }
    return;
  }
  // A span per action, in the client's trace when it sent a `traceparent`. Agent replies without one
  // get theirs from the agent host, in the trace of the task they answer.
  const parent = typeof traceparent === 'string' ? traceparent : undefined;
  if (isReply && parent === undefined) {
    run(ctx, session, action, id, parsed.data, answer);
    return;
  }
  inSpan(
    `openclaw ${action}`,
    {
      kind: SpanKind.SERVER,
      parent: contextOf(parent),
      attributes: {
        'openclaw.action': action,
        'openclaw.replica': ctx.replicaId,
        'openclaw.tenant': session.principal.tenant,
        'openclaw.session': session.id,
      },
    },
    () => run(ctx, session, action, id, parsed.data, answer),
  );
}

function run(
  ctx: HandlerContext,
  session: Session,
  action: ActionName,
  id: RequestId | null,
  params: unknown,
  answer: boolean,
): Promise<void> | undefined {
  const handler = ACTION_HANDLERS[action] as (
    c: HandlerContext,
    s: { session: Session; id: RequestId | null },
    p: unknown,
  ) => unknown;
  let result: unknown;
  try {
    result = handler(ctx, { session, id }, params);
  } catch (error) {
    logInternal(ctx, error);
    markSpan(error);
    if (answer) respondError(ctx, session, id, action, toWireError(error));
    return undefined;
  }
  if (result instanceof Promise) {
    // Counted until answered: a draining replica closes a connection only when nothing is being handled.
    session.handling += 1;
    // Returned, so the action's span ends when the action does.
    return result.then(
      (value) => {
        session.handling -= 1;
        if (answer) respondOk(ctx, session, id, action, value);
      },
      (error: unknown) => {
        session.handling -= 1;
        logInternal(ctx, error);
        markSpan(error);
        if (answer) respondError(ctx, session, id, action, toWireError(error));
      },
    );
  }
  if (answer) respondOk(ctx, session, id, action, result);
  return undefined;
}

/** `register` with a schema for the task `__proto__`, which the gateway cannot hold. */
const PROTO_SCHEMA_ISSUE = {
  success: false as const,
  error: new z.ZodError([
    {
      code: 'custom',
      path: ['inputSchemas', '__proto__'],
      message: "no input schema can be declared for a task named '__proto__'",
      input: undefined,
    },
  ]),
};

/**
 * A frame nested deeper than OPENCLAW_MAX_JSON_DEPTH: `BAD_REQUEST` naming the field. An agent's
 * too-deep result or error still ends its task, as an error, so the caller is answered at once.
 */
function refuseTooDeep(
  ctx: HandlerContext,
  session: Session,
  action: ActionName,
  id: RequestId | null,
  params: Record<string, unknown>,
  problem: FieldIssue,
  answer: boolean,
): void {
  const message = `${problem.field || 'the frame'} is nested deeper than ${ctx.limits.maxJsonDepth} levels`;
  if ((action === 'task.result' || action === 'task.error') && typeof params.taskId === 'string') {
    const taskId = params.taskId;
    try {
      ctx.agents.handleAgentReply(
        session,
        'task.error',
        { taskId, error: { code: 'BAD_REQUEST', message: `the agent's answer: ${message}`, retryable: false } },
        (agent) => ctx.authorizer.require(session.principal, `agent:register:${agent}`),
      );
    } catch {
      // Not a task this connection holds (or may answer): only the agent hears of its frame.
    }
  }
  if (!answer) return;
  respondError(ctx, session, id, action, {
    code: 'BAD_REQUEST',
    message: `invalid ${action}: ${message}`,
    retryable: false,
    details: [problem],
    ...notHandled(action),
  });
}

/** Marks the action's span as failed, with the error's code (never its details). */
function markSpan(error: unknown): void {
  const code = error instanceof GatewayError ? error.code : 'INTERNAL';
  const span = trace.getActiveSpan();
  span?.setStatus({ code: SpanStatusCode.ERROR, message: code });
  span?.setAttribute('openclaw.error.code', code);
}

function respondOk(ctx: HandlerContext, session: Session, id: RequestId | null, action: string, result: unknown): void {
  try {
    session.send({ id, ok: true, result });
  } catch (error) {
    // A result that cannot be sent (it cannot be serialised) still ends the request.
    logInternal(ctx, error);
    respondError(ctx, session, id, action, toWireError(error));
    return;
  }
  ctx.metrics.countRequest(action, 'ok');
  // One line per answered request at debug level (with the trace and span ids when traced).
  if (ctx.logger.isLevelEnabled('debug')) ctx.logger.debug({ action, outcome: 'ok', session: session.id }, 'request');
}

function respondError(
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

/** For a `coordinator` refused before it was handled: no agent got the task (`dispatched: false`). */
function notHandled(action: ActionName): { dispatched?: false } {
  return action === 'coordinator' ? { dispatched: false } : {};
}

function logInternal(ctx: HandlerContext, error: unknown): void {
  if (!(error instanceof GatewayError)) ctx.logger.error({ err: error }, 'unexpected error in a request handler');
}
