import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type AgentRegistry,
  type AuditLog,
  ForwardedCallSchema,
  type GatewayConfig,
  GatewayError,
  OPERATORS_TENANT,
  type RegionLink,
  type TaskDispatcher,
  toWireError,
  traceparentOf,
} from '@openclaw/core';
import { parseBody, readJson, requireJson, send } from './http-io';

/** What the region link's endpoints need of their replica. */
export interface RegionEndpointsReplica {
  readonly config: GatewayConfig;
  readonly audit: AuditLog;
  readonly registry: AgentRegistry;
  readonly regionLink: RegionLink | undefined;
  readonly dispatcher: TaskDispatcher;
}

/**
 * The endpoints linked regions call, authenticated by the regions' shared secret instead of a
 * principal's credentials: `GET /v1/regions/agents` (the agents this region can run, for the other
 * regions' directories) and `POST /v1/regions/calls` (a call forwarded from another region, run here
 * through this region's governance and audited here; never sent on).
 */
export async function regionEndpoints(
  replica: RegionEndpointsReplica,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const link = replica.regionLink;
  if (!link)
    throw new GatewayError('NOT_FOUND', 'this cluster is not linked with other regions (OPENCLAW_REGION_PEERS)');
  const from = req.headers['x-openclaw-region'];
  if (!link.admits(req.headers.authorization)) {
    replica.audit.record(OPERATORS_TENANT, {
      type: 'region.refused',
      outcome: 'UNAUTHENTICATED',
      details: { path, region: typeof from === 'string' ? from.slice(0, 64) : null },
    });
    throw new GatewayError('UNAUTHENTICATED', 'the region link secret is missing or wrong');
  }
  const method = req.method ?? 'GET';
  if (path === '/v1/regions/agents' && method === 'GET') {
    const agents = await replica.registry.list();
    send(res, 200, { region: link.region, agents: agents.map((a) => a.name) });
    return;
  }
  if (path === '/v1/regions/calls' && method === 'POST') return receiveCall(replica, link, req, res);
  throw new GatewayError('NOT_FOUND', `no endpoint ${method} ${path}`);
}

/**
 * Runs a call another region forwarded, as a call of its principal in its tenant: admitted by this
 * region's governance (a human approval is waited for, within the deadline), routed only to an
 * instance in this region, and audited as `task.routed` with the region it came from. The answer is
 * HTTP 200 with the output or the error; the call is canceled when the other region hangs up.
 */
async function receiveCall(
  replica: RegionEndpointsReplica,
  link: RegionLink,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  requireJson(req);
  const call = parseBody(
    ForwardedCallSchema,
    await readJson(req, replica.config.maxJsonDepth, replica.config.maxFrameBytes),
    'forwarded call',
  );
  if (!link.peers.some((peer) => peer.name === call.region)) {
    throw new GatewayError('FORBIDDEN', `region '${call.region}' is not linked with this one`);
  }
  const started = performance.now();
  let outcome = 'ok';
  let settled = false;
  const hungUp = (): void => {
    if (!settled) replica.dispatcher.cancelLocal(call.taskId);
  };
  res.once('close', hungUp);
  try {
    const handle = await replica.dispatcher.dispatch({
      agent: call.agent,
      task: call.task,
      data: call.data ?? null,
      timeoutMs: call.timeoutMs,
      caller: {
        principal: call.principal,
        tenant: call.tenant,
        agent: call.from?.agent,
        onBehalfOf: call.from?.onBehalfOf,
        chain: call.from?.chain,
        roles: call.roles,
      },
      taskId: call.taskId,
      traceparent: traceparentOf(),
      fromRegion: call.region,
      approval: { mode: 'wait' },
    });
    const output = await handle.output;
    settled = true;
    send(res, 200, { ok: true, output });
  } catch (error) {
    settled = true;
    const wire = toWireError(error);
    outcome = wire.code;
    send(res, 200, { ok: false, error: wire });
  } finally {
    res.off('close', hungUp);
    replica.audit.record(call.tenant, {
      type: 'task.routed',
      principal: call.principal,
      outcome,
      details: {
        agent: call.agent,
        task: call.task,
        taskId: call.taskId,
        ms: Math.round(performance.now() - started),
        fromRegion: call.region,
      },
    });
  }
}
