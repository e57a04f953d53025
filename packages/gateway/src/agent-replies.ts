import {
  ACTION_PARAMS,
  type ActionParams,
  type AgentReplyAction,
  describeIssues,
  nestingProblem,
  type RequestId,
} from '@openclaw/protocol';
import type { HandlerContext } from './handler-context';
import { type ActionHandler, inActionSpan, respondError, runAction } from './responses';
import type { Session } from './session';

/**
 * The answer an agent sends for a task it holds (`task.result`, `task.error`) or on its way
 * (`task.progress`). The connection must hold that task and may still answer as its agent.
 */
function reply(action: AgentReplyAction): ActionHandler {
  return (ctx, { session }, params) =>
    ctx.agents.handleAgentReply(session, action, params as ActionParams<AgentReplyAction>, (agent) =>
      ctx.authorizer.require(session.principal, `agent:register:${agent}`),
    );
}

const REPLY_HANDLERS: Record<AgentReplyAction, ActionHandler> = {
  'task.result': reply('task.result'),
  'task.error': reply('task.error'),
  'task.progress': reply('task.progress'),
};

/**
 * Handles an agent's reply frame. Unlike requests, replies are handled while the connection closes
 * or the replica drains, and are never rate limited: a caller elsewhere waits for them. They are
 * answered only when they carry an `id`. A reply the gateway cannot take (nested too deep) still
 * ends its task, as an error, so that the caller is answered at once.
 */
export function handleAgentReply(
  ctx: HandlerContext,
  session: Session,
  action: AgentReplyAction,
  id: RequestId | null,
  answer: boolean,
  params: Record<string, unknown>,
  traceparent: string | undefined,
): void {
  const tooDeep = nestingProblem(params, ctx.limits.maxJsonDepth);
  if (tooDeep) {
    const message = `${tooDeep.field || 'the frame'} is nested deeper than ${ctx.limits.maxJsonDepth} levels`;
    if (action !== 'task.progress' && typeof params.taskId === 'string') failTask(ctx, session, params.taskId, message);
    if (answer) {
      respondError(ctx, session, id, action, {
        code: 'BAD_REQUEST',
        message: `invalid ${action}: ${message}`,
        retryable: false,
        details: [tooDeep],
      });
    }
    return;
  }
  const parsed = ACTION_PARAMS[action].safeParse(params);
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
  const handler = REPLY_HANDLERS[action];
  // Without a `traceparent` of its own, the reply's span comes from the agent host, in the trace of
  // the task it answers.
  if (traceparent === undefined) {
    runAction(ctx, session, action, id, handler, parsed.data, answer);
    return;
  }
  inActionSpan(ctx, session, action, traceparent, () =>
    runAction(ctx, session, action, id, handler, parsed.data, answer),
  );
}

/** Ends a task this connection holds with an error the agent did not send in a form the gateway could take. */
function failTask(ctx: HandlerContext, session: Session, taskId: string, message: string): void {
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
