import {
  type AgentRegistry,
  type ApiKeyStore,
  type Approvals,
  type AsyncTasks,
  type AuditLog,
  type Authorizer,
  type CallRecords,
  type Delegation,
  type DelegationIssuer,
  GatewayError,
  grantOf,
  type Logger,
  qualifiedAgent,
  type SchemaStore,
  schemaProblem,
  storeSchemas,
  type TaskDispatcher,
  traceparentOf,
} from '@openclaw/core';
import {
  type ActionName,
  type ActionParams,
  PROTOCOL_VERSION,
  type ServerFrame,
  TERMINAL_TASK_STATES,
} from '@openclaw/protocol';
import type { AgentHost } from './agent-host';
import { decideApproval, getApproval, listApprovals } from './approval-access';
import type { ClusterSnapshotFeed } from './cluster-snapshot-feed';
import type { ReplicaCounters } from './replica-counters';
import type { Session } from './session';
import type { TaskEventRouter } from './task-events';
import type { TaskCaller, TaskOperations } from './task-operations';

/** What the handlers need from the replica. */
export interface HandlerContext {
  replicaId: string;
  registry: AgentRegistry;
  dispatcher: TaskDispatcher;
  store: CallRecords;
  /** Async tasks and workflows (the durable task queue). */
  asyncTasks: AsyncTasks;
  /** The task operations both transports share. */
  tasks: TaskOperations;
  /** Messages waiting for approval. */
  approvals: Approvals;
  /** Connections watching the cluster (`cluster.watch`). */
  snapshotFeed: ClusterSnapshotFeed;
  /** Agents' declared input schemas. */
  schemaStore: SchemaStore;
  taskEvents: TaskEventRouter;
  agents: AgentHost;
  metrics: ReplicaCounters;
  audit: AuditLog;
  authorizer: Authorizer;
  /** Mints and reads delegation tokens; absent when delegation is off. */
  delegations: DelegationIssuer | undefined;
  /** Stored API keys (revoked minters end their delegations); absent without OPENCLAW_API_KEY_SECRET. */
  apiKeys: ApiKeyStore | undefined;
  /** Refuse requests while the audit trail cannot be written (OPENCLAW_AUDIT_REQUIRED). */
  auditRequired: boolean;
  /** Record call data in audit entries (OPENCLAW_AUDIT_PAYLOADS). */
  auditPayloads: boolean;
  logger: Logger;
  limits: {
    maxFrameBytes: number;
    maxJsonDepth: number;
    heartbeatMs: number;
    defaultTimeoutMs: number;
    maxInFlightPerConnection: number;
  };
}

/** One request being handled: its session and its id (for events tied to it). */
export interface RequestScope {
  session: Session;
  id: string | number | null;
}

type Handler<A extends ActionName> = (
  ctx: HandlerContext,
  scope: RequestScope,
  params: ActionParams<A>,
) => Promise<unknown> | unknown;

/** Characters of call data kept in an audit entry when payloads are audited. */
const AUDIT_PAYLOAD_CHARS = 4096;

/** Most `task.subscribe` watches one connection may hold. */
export const MAX_SUBSCRIPTIONS_PER_SESSION = 64;
const SUBSCRIBE_POLL_MS = 250;

function requirePermission(ctx: HandlerContext, session: Session, permission: string): void {
  ctx.authorizer.require(session.principal, permission);
}

/** The handler of every core action. */
export const ACTION_HANDLERS: { [A in ActionName]: Handler<A> } = {
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
    ctx.audit.record(session.principal.tenant, {
      type: 'agent.registered',
      principal: session.principal.id,
      outcome: 'ok',
      details: { agent: params.name, instanceId: result.instanceId, concurrency: params.concurrency ?? 1 },
    });
    return result;
  },

  async delegate(ctx, { session }, params) {
    const issuer = requireDelegation(ctx);
    const parent = params.parent
      ? { delegation: await issuer.verify(params.parent), actingAgent: [...session.instances.values()] }
      : undefined;
    if (parent) await requireLiveIssuers(ctx, parent.delegation);
    // Bound to the principals the agent connects as, so that another principal registering the same
    // agent name cannot replay the token.
    const audience = async (): Promise<string[]> => {
      if (params.principal !== undefined) return [params.principal];
      const live = await ctx.registry.principalsOf(qualifiedAgent(session.principal.tenant, params.agent));
      if (live.length > 0) return live;
      throw new GatewayError(
        'BAD_REQUEST',
        `agent '${params.agent}' has no live instance to bind the delegation to: name the principal it connects as in 'principal', or mint it once the agent is registered`,
        { details: [{ field: 'principal', message: 'required while the agent has no live instance' }] },
      );
    };
    const { token, delegation } = await issuer.mint({
      principal: session.principal.id,
      tenant: session.principal.tenant,
      holds: (permission) => ctx.authorizer.can(session.principal, permission),
      agent: params.agent,
      audience,
      permissions: params.permissions,
      ttlSeconds: params.ttlSeconds,
      issuerExpiresAt: session.principal.expiresAt,
      maxDepth: params.maxDepth,
      parent,
    });
    ctx.audit.record(session.principal.tenant, {
      type: 'delegation.minted',
      principal: session.principal.id,
      outcome: 'ok',
      details: {
        agent: params.agent,
        permissions: delegation.permissions.join(' '),
        onBehalfOf: delegation.onBehalfOf,
        chain: delegation.chain.join(' > '),
        depth: delegation.depth,
        audience: delegation.audience.join(' '),
      },
    });
    return { token, expiresAt: delegation.expiresAt, depth: delegation.depth, maxDepth: delegation.maxDepth };
  },

  async coordinator(ctx, { session, id }, params) {
    // A delegated call: the token must be for this connection's agent and grant the call; the agent's
    // own rights are checked too, so the result is the intersection along the chain.
    let delegated: Delegation | undefined;
    if (params.delegation !== undefined) {
      delegated = await requireDelegation(ctx).verify(params.delegation);
      if (![...session.instances.values()].includes(delegated.agent)) {
        throw new GatewayError(
          'FORBIDDEN',
          `this delegation was issued for agent '${delegated.agent}', and this connection is not that agent`,
        );
      }
      if (delegated.tenant !== session.principal.tenant)
        throw new GatewayError('FORBIDDEN', 'this delegation is of another tenant');
      if (!delegated.audience.includes(session.principal.id)) {
        throw new GatewayError(
          'FORBIDDEN',
          `this delegation was issued to ${delegated.audience.map((p) => `'${p}'`).join(', ')}, not to this connection's principal`,
        );
      }
      await requireLiveIssuers(ctx, delegated);
      if (!grantOf(delegated.permissions, `agent:invoke:${params.agent}`)) {
        throw new GatewayError('FORBIDDEN', `the delegation does not grant 'agent:invoke:${params.agent}'`);
      }
    }
    requirePermission(ctx, session, `agent:invoke:${params.agent}`);
    const agents = ctx.agents.chainFor(session, params.parentTaskId);
    if (params.mode === 'async') {
      const submitted = await ctx.tasks.submit(
        {
          ...callerOf(session),
          agents,
          ...(delegated
            ? {
                delegation: {
                  onBehalfOf: delegated.onBehalfOf,
                  chain: [...delegated.chain, session.principal.id],
                  depth: delegated.depth,
                },
              }
            : {}),
        },
        {
          agent: params.agent,
          task: params.task,
          data: params.data ?? null,
          timeoutMs: params.timeoutMs,
          idempotencyKey: params.idempotencyKey,
          retry: params.retry,
          escalation: params.escalation,
        },
      );
      return { taskId: submitted.taskId, status: submitted.status };
    }
    if (session.inFlight >= ctx.limits.maxInFlightPerConnection) {
      throw new GatewayError(
        'RATE_LIMITED',
        `at most ${ctx.limits.maxInFlightPerConnection} coordinator calls may be in flight per connection`,
        { retryAfterMs: 100, dispatched: false },
      );
    }
    const started = performance.now();
    let outcome = 'ok';
    let taskId: string | undefined;
    session.inFlight += 1;
    try {
      const handle = await ctx.dispatcher.dispatch({
        agent: params.agent,
        task: params.task,
        data: params.data ?? null,
        timeoutMs: params.timeoutMs ?? ctx.limits.defaultTimeoutMs,
        caller: {
          principal: session.principal.id,
          tenant: session.principal.tenant,
          agent: firstAgent(session),
          limits: session.limits,
          onBehalfOf: delegated?.onBehalfOf,
          chain: delegated ? [...delegated.chain, session.principal.id] : undefined,
          roles: session.principal.roles,
          agents,
          delegationDepth: delegated?.depth,
        },
        idempotencyKey: params.idempotencyKey,
        // The call's trace (this action's span) goes with the task to the agent.
        traceparent: traceparentOf(),
        onProgress: (progress) => session.send({ event: 'task.progress', id, taskId: handle.taskId, progress }),
        approval: {
          mode: 'wait',
          approvalId: params.approvalId,
          onPending: (approval) => {
            const event: Record<string, unknown> = {
              event: 'approval.required',
              id,
              taskId: approval.taskId,
              approvalId: approval.approvalId,
              validator: approval.validator,
              expiresAt: approval.expiresAt,
              required: approval.required,
            };
            if (approval.reason !== undefined) event.reason = approval.reason;
            session.send(event as unknown as ServerFrame);
          },
        },
      });
      taskId = handle.taskId;
      if (id !== null) session.callsByRequestId.set(id, handle.taskId);
      const output = await handle.output;
      return { taskId: handle.taskId, status: 'completed', output };
    } catch (error) {
      outcome = error instanceof GatewayError ? error.code : 'INTERNAL';
      throw error;
    } finally {
      if (id !== null) session.callsByRequestId.delete(id);
      session.inFlight -= 1;
      const ms = performance.now() - started;
      ctx.metrics.observeCoordinator(ms);
      ctx.audit.record(session.principal.tenant, {
        type: 'task.routed',
        principal: session.principal.id,
        outcome,
        details: {
          agent: params.agent,
          task: params.task,
          taskId: taskId ?? null,
          ms: Math.round(ms),
          onBehalfOf: delegated?.onBehalfOf ?? null,
          chain: delegated ? [...delegated.chain, session.principal.id].join(' > ') : null,
          ...(ctx.auditPayloads
            ? { data: (JSON.stringify(params.data ?? null) ?? 'null').slice(0, AUDIT_PAYLOAD_CHARS) }
            : {}),
        },
      });
    }
  },

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
    requirePermission(ctx, session, 'task:read');
    const task = await ctx.tasks.findAsync(session.principal, params.taskId);
    if (task) {
      if (session.subscriptions >= MAX_SUBSCRIPTIONS_PER_SESSION) {
        throw new GatewayError(
          'RATE_LIMITED',
          `at most ${MAX_SUBSCRIPTIONS_PER_SESSION} task subscriptions per connection`,
        );
      }
      // In place now; the replay (and live events) follow the response.
      ctx.taskEvents.watch(session, task, params.after).catch((error: unknown) => {
        ctx.logger.warn({ err: error, taskId: task.taskId }, 'task event replay failed');
      });
      return { taskId: task.taskId, status: task.status };
    }
    const record = await ctx.store.get(params.taskId);
    if (!record || record.principal !== session.principal.id)
      throw new GatewayError('NOT_FOUND', `no task '${params.taskId}'`);
    if (session.subscriptions >= MAX_SUBSCRIPTIONS_PER_SESSION) {
      throw new GatewayError(
        'RATE_LIMITED',
        `at most ${MAX_SUBSCRIPTIONS_PER_SESSION} task subscriptions per connection`,
      );
    }
    watchTask(ctx, session, params.taskId, record.status);
    return { taskId: record.taskId, status: record.status };
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

  async 'agents.list'(ctx, { session }) {
    requirePermission(ctx, session, 'agent:list');
    return ctx.registry.list(session.principal.tenant);
  },

  ping() {
    return { pong: true, time: Date.now() };
  },

  'task.result'(ctx, { session }, params) {
    return ctx.agents.handleAgentReply(session, 'task.result', params, (agent) =>
      requirePermission(ctx, session, `agent:register:${agent}`),
    );
  },
  'task.error'(ctx, { session }, params) {
    return ctx.agents.handleAgentReply(session, 'task.error', params, (agent) =>
      requirePermission(ctx, session, `agent:register:${agent}`),
    );
  },
  'task.progress'(ctx, { session }, params) {
    return ctx.agents.handleAgentReply(session, 'task.progress', params, (agent) =>
      requirePermission(ctx, session, `agent:register:${agent}`),
    );
  },
};

/**
 * Refuses a delegation one of whose issuers' API keys has been revoked since: revoking a key ends the
 * delegations it minted, and those minted from them.
 */
async function requireLiveIssuers(ctx: HandlerContext, delegation: Delegation): Promise<void> {
  if (!ctx.apiKeys) return;
  const ids = delegation.chain.flatMap((p) => /^apikey:([0-9a-f]{12})$/.exec(p)?.[1] ?? []);
  const revoked = await ctx.apiKeys.revokedAmong(ids);
  if (revoked.size > 0) {
    throw new GatewayError(
      'FORBIDDEN',
      `the delegation was minted by API key '${[...revoked][0]}', which has been revoked since`,
    );
  }
}

function requireDelegation(ctx: HandlerContext): DelegationIssuer {
  if (!ctx.delegations) {
    throw new GatewayError('UNAVAILABLE', 'delegation is not enabled on this cluster (OPENCLAW_DELEGATION_SECRET)', {
      retryable: false,
    });
  }
  return ctx.delegations;
}

/** The caller of a task operation on this connection, in the trace of the request. */
function callerOf(session: Session): TaskCaller {
  const agent = firstAgent(session);
  const traceparent = traceparentOf();
  return {
    principal: session.principal,
    ...(agent === undefined ? {} : { agent }),
    ...(traceparent === undefined ? {} : { traceparent }),
  };
}

function firstAgent(session: Session): string | undefined {
  for (const name of session.instances.values()) return name;
  return undefined;
}

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
