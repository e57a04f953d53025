import {
  type Delegation,
  type DelegationIssuer,
  GatewayError,
  grantOf,
  qualifiedAgent,
  traceparentOf,
} from '@openclaw/core';
import type { ServerFrame } from '@openclaw/protocol';
import { callerOf, firstAgent, type Handler, type HandlerContext } from './handler-context';

/**
 * The actions that route a call: `coordinator` (a sync call through the dispatcher, or an async task
 * through the queue) and `delegate` (a token that lets an agent call on its caller's behalf).
 */
export const CALL_ACTIONS: { coordinator: Handler<'coordinator'>; delegate: Handler<'delegate'> } = {
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
    ctx.authorizer.require(session.principal, `agent:invoke:${params.agent}`);
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
          thread: params.thread,
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
    let cached = false;
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
        thread: params.thread,
        cache: params.cache !== false,
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
      cached = handle.cached === true;
      if (id !== null) session.callsByRequestId.set(id, handle.taskId);
      const output = await handle.output;
      return cached
        ? { taskId: handle.taskId, status: 'completed', output, cached: true }
        : { taskId: handle.taskId, status: 'completed', output };
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
          ...(cached ? { cached: true } : {}),
          onBehalfOf: delegated?.onBehalfOf ?? null,
          chain: delegated ? [...delegated.chain, session.principal.id].join(' > ') : null,
          ...(ctx.auditPayloads
            ? { data: (JSON.stringify(params.data ?? null) ?? 'null').slice(0, AUDIT_PAYLOAD_CHARS) }
            : {}),
        },
      });
    }
  },
};

/** Characters of call data kept in an audit entry when payloads are audited. */
const AUDIT_PAYLOAD_CHARS = 4096;

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
