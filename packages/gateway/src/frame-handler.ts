import {
  ACTION_PARAMS,
  type ActionName,
  describeIssues,
  isActionName,
  isAgentReply,
  nestingProblem,
  type RequestAction,
  type RequestId,
  RequestIdSchema,
} from '@openclaw/protocol';
import { z } from 'zod';
import { ACTION_HANDLERS } from './action-handlers';
import { handleAgentReply } from './agent-replies';
import type { HandlerContext } from './handler-context';
import { type ActionHandler, inActionSpan, respondError, runAction } from './responses';
import type { Session } from './session';

/**
 * Handles one inbound frame: reads its envelope (JSON object, `id`, `action`), then hands it to the
 * request path below or to the agent-reply path (agent-replies.ts). A request gets exactly one
 * response; an agent reply only when it carries an `id`. Nothing a client sends can throw out of
 * here: every failure becomes an error response and the socket stays open.
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
  const parent = typeof traceparent === 'string' ? traceparent : undefined;
  if (isAgentReply(action)) {
    handleAgentReply(ctx, session, action, id, rawId !== undefined, params, parent);
    return;
  }
  handleRequest(ctx, session, action, id, params, parent);
}

/**
 * Handles a request: refused unhandled while the connection closes, the replica drains (but for
 * `task.cancel`), the connection's rate limit is spent or the audit trail cannot be written; else
 * validated and run in a span of its own (in the client's trace when it sent a `traceparent`).
 */
function handleRequest(
  ctx: HandlerContext,
  session: Session,
  action: RequestAction,
  id: RequestId | null,
  params: Record<string, unknown>,
  traceparent: string | undefined,
): void {
  // A request that arrives after the gateway began closing the connection is not handled: its answer
  // could not be sent, and the client may then safely send it again elsewhere (a 1001 promises that).
  if (session.closing) return;
  if (session.leaving && action !== 'task.cancel') {
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
  if (ctx.auditRequired && !ctx.audit.healthy()) {
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
    respondError(ctx, session, id, action, {
      code: 'BAD_REQUEST',
      message: `invalid ${action}: ${tooDeep.field || 'the frame'} is nested deeper than ${ctx.limits.maxJsonDepth} levels`,
      retryable: false,
      details: [tooDeep],
      ...notHandled(action),
    });
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
    respondError(ctx, session, id, action, {
      code: 'BAD_REQUEST',
      message: `invalid ${action}: ${details.map((d) => `${d.field || '(frame)'}: ${d.message}`).join('; ')}`,
      retryable: false,
      details,
    });
    return;
  }
  const handler = ACTION_HANDLERS[action] as ActionHandler;
  inActionSpan(ctx, session, action, traceparent, () =>
    runAction(ctx, session, action, id, handler, parsed.data, true),
  );
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

/** For a `coordinator` refused before it was handled: no agent got the task (`dispatched: false`). */
function notHandled(action: ActionName): { dispatched?: false } {
  return action === 'coordinator' ? { dispatched: false } : {};
}
