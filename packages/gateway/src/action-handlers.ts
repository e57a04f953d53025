import { GatewayError, schemaProblem, storeSchemas } from '@openclaw/core';
import { PROTOCOL_VERSION, type RequestAction, TERMINAL_TASK_STATES } from '@openclaw/protocol';
import { decideApproval, getApproval, listApprovals } from './approval-access';
import { CALL_ACTIONS } from './call-actions';
import { callerOf, type Handler, type HandlerContext } from './handler-context';
import type { Session } from './session';
import { STATE_ACTIONS } from './state-actions';

/** The protocol 1.1 additions this gateway has (`hello`'s `features`). */
const PROTOCOL_FEATURES = ['state', 'memory', 'cache'] as const;

/** Most `task.subscribe` watches one connection may hold. */
export const MAX_SUBSCRIPTIONS_PER_SESSION = 64;
const SUBSCRIBE_POLL_MS = 250;

function requirePermission(ctx: HandlerContext, session: Session, permission: string): void {
  ctx.authorizer.require(session.principal, permission);
}

/** The handler of every core action. */
export const ACTION_HANDLERS: { [A in RequestAction]: Handler<A> } = {
  hello(ctx, { session }, params) {
    if (params.protocol !== undefined && params.protocol !== PROTOCOL_VERSION) {
      throw new GatewayError(
        'BAD_REQUEST',
        `protocol version ${params.protocol} is not supported; this gateway speaks ${PROTOCOL_VERSION}`,
        {
          details: [{ field: 'protocol', message: `expected ${PROTOCOL_VERSION}` }],
        },
      );
    }
    const p = session.principal;
    return {
      protocol: PROTOCOL_VERSION,
      sessionId: session.id,
      replica: ctx.replicaId,
      principal: { id: p.id, tenant: p.tenant, roles: [...p.roles] },
      limits: {
        maxFrameBytes: ctx.limits.maxFrameBytes,
        maxJsonDepth: ctx.limits.maxJsonDepth,
        heartbeatMs: ctx.limits.heartbeatMs,
      },
      features: [...PROTOCOL_FEATURES],
    };
  },

  async register(ctx, { session }, params) {
    requirePermission(ctx, session, `agent:register:${params.name}`);
    const problems = Object.entries(params.inputSchemas ?? {}).flatMap(([task, schema]) => {
      const problem = schemaProblem(schema);
      return problem === undefined
        ? []
        : [{ field: `inputSchemas.${task}`, message: `not a valid JSON Schema: ${problem}` }];
    });
    if (problems.length > 0) {
      throw new GatewayError(
        'BAD_REQUEST',
        `invalid register: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
        {
          details: problems,
        },
      );
    }
    const result = await ctx.agents.register(session, params);
    if (params.inputSchemas !== undefined) {
      await storeSchemas(ctx.schemaStore, session.principal.tenant, params.name, params.inputSchemas);
    }
    if (params.retry !== undefined)
      await ctx.asyncTasks.setAgentRetry(session.principal.tenant, params.name, params.retry);
    if (params.cache !== undefined)
      await ctx.resultCache.setPolicy(session.principal.tenant, params.name, params.cache);
    ctx.audit.record(session.principal.tenant, {
      type: 'agent.registered',
      principal: session.principal.id,
      outcome: 'ok',
      details: { agent: params.name, instanceId: result.instanceId, concurrency: params.concurrency ?? 1 },
    });
    return result;
  },

  ...CALL_ACTIONS,
  ...STATE_ACTIONS,

  'task.get'(ctx, { session }, params) {
    return ctx.tasks.get(callerOf(session), params.taskId);
  },

  async 'task.cancel'(ctx, { session }, params) {
    requirePermission(ctx, session, 'task:cancel');
    const taskId = params.taskId ?? session.callsByRequestId.get(params.requestId!);
    if (taskId === undefined) {
      throw new GatewayError(
        'NOT_FOUND',
        `this connection has no coordinator call in flight with id ${JSON.stringify(params.requestId)}`,
      );
    }
    const task = params.taskId === undefined ? undefined : await ctx.tasks.findAsync(session.principal, taskId);
    if (task) return ctx.tasks.cancel(callerOf(session), taskId);
    await ctx.dispatcher.cancel(taskId, session.principal.id);
    return { taskId, status: 'canceled' };
  },

  async 'task.subscribe'(ctx, { session }, params) {
    const found = await ctx.tasks.find(session.principal, params.taskId);
    if (session.subscriptions >= MAX_SUBSCRIPTIONS_PER_SESSION) {
      throw new GatewayError(
        'RATE_LIMITED',
        `at most ${MAX_SUBSCRIPTIONS_PER_SESSION} task subscriptions per connection`,
      );
    }
    if (found.mode === 'sync') {
      watchTask(ctx, session, params.taskId, found.record.status);
      return { taskId: found.record.taskId, status: found.record.status };
    }
    const { task } = found;
    // In place now; the replay (and live events) follow the response.
    ctx.taskEvents.watch(session, task, params.after).catch((error: unknown) => {
      ctx.logger.warn({ err: error, taskId: task.taskId }, 'task event replay failed');
    });
    return { taskId: task.taskId, status: task.status };
  },

  'task.respond'(ctx, { session }, params) {
    return ctx.tasks.respond(callerOf(session), params.taskId, params.output);
  },

  'task.retry'(ctx, { session }, params) {
    return ctx.tasks.retry(callerOf(session), params.taskId);
  },

  'task.list'(ctx, { session }, params) {
    return ctx.tasks.list(callerOf(session), params.status ?? 'failed', params.limit ?? 100);
  },

  async 'workflow.start'(ctx, { session }, params) {
    const submitted = await ctx.tasks.startWorkflow(
      { ...callerOf(session), agents: ctx.agents.chainFor(session) },
      params.workflow,
      params.input ?? null,
      params.idempotencyKey,
      params.thread,
    );
    return { taskId: submitted.taskId, status: submitted.status };
  },

  'approval.list'(ctx, { session }, params) {
    return listApprovals(ctx, session.principal, params.status ?? 'pending', params.limit ?? 100);
  },

  'approval.get'(ctx, { session }, params) {
    return getApproval(ctx, session.principal, params.approvalId);
  },

  'approval.decide'(ctx, { session }, params) {
    return decideApproval(ctx, session.principal, params.approvalId, params.decision, params.reason);
  },

  'cluster.watch'(ctx, { session }, params) {
    requirePermission(ctx, session, 'cluster:read');
    const intervalMs = params.intervalMs ?? 2000;
    ctx.snapshotFeed.watch(session, intervalMs);
    return { watching: true, intervalMs };
  },

  'cluster.unwatch'(ctx, { session }) {
    ctx.snapshotFeed.unwatch(session);
    return { watching: false };
  },

  async 'tasks.watch'(ctx, { session }) {
    requirePermission(ctx, session, 'task:read:any');
    await ctx.taskEvents.watchAll(session);
    return { watching: true };
  },

  'tasks.unwatch'(ctx, { session }) {
    ctx.taskEvents.unwatchAll(session);
    return { watching: false };
  },

  async 'cache.invalidate'(ctx, { session }, { agent, task }) {
    requirePermission(ctx, session, 'cache:invalidate');
    const invalidated = await ctx.resultCache.invalidate(session.principal.tenant, agent, task);
    ctx.audit.record(session.principal.tenant, {
      type: 'cache.invalidated',
      principal: session.principal.id,
      outcome: 'ok',
      details: { agent, task: task ?? null, invalidated },
    });
    return { invalidated };
  },

  async 'agents.list'(ctx, { session }) {
    requirePermission(ctx, session, 'agent:list');
    return ctx.registry.list(session.principal.tenant);
  },

  ping() {
    return { pong: true, time: Date.now() };
  },
};

/**
 * Sends `task.status` when a task reaches a terminal state, reading the cluster-wide task record, so
 * it works whichever replica runs the task. Ends when the task ends, the record expires or the
 * session closes.
 */
function watchTask(ctx: HandlerContext, session: Session, taskId: string, initial: string): void {
  session.subscriptions += 1;
  let last = initial;
  const finish = (): void => {
    clearInterval(timer);
    session.subscriptions -= 1;
  };
  const check = async (): Promise<void> => {
    if (!session.open) return finish();
    const record = await ctx.store.get(taskId).catch(() => undefined);
    if (!record) return finish();
    if (record.status === last && !TERMINAL_TASK_STATES.has(record.status)) return;
    last = record.status;
    const event: Record<string, unknown> = { event: 'task.status', taskId, status: record.status };
    if (record.output !== undefined) event.output = record.output;
    if (record.error !== undefined) event.error = record.error;
    session.send(event as never);
    if (TERMINAL_TASK_STATES.has(record.status)) finish();
  };
  const timer = setInterval(() => void check(), SUBSCRIBE_POLL_MS);
  timer.unref();
  void check();
}
