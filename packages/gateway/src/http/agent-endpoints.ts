import { checkAgentUrl, GatewayError, qualifiedAgent } from '@openclaw/core';
import { AgentNameSchema, RegisterParamsSchema, RetryPolicySchema, TaskNameSchema } from '@openclaw/protocol';
import { z } from 'zod';
import { type Endpoints, noEndpoint } from './endpoint';
import { parseBody, readJson, requireJson, send } from './http-io';

/** Body of `POST /v1/agents`: register an HTTP agent. */
export const HttpAgentBodySchema = z.object({
  name: AgentNameSchema,
  url: z.string().min(1).max(2048),
  tasks: z.array(TaskNameSchema).max(256).optional(),
  timeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  /** Default retries of async tasks sent to this agent. */
  retry: RetryPolicySchema.optional(),
  /** Tasks whose outputs the gateway may cache, and for how long (as `register`'s `cache`). */
  cache: RegisterParamsSchema.shape.cache,
});

/**
 * `GET /v1/agents` (the tenant's agents), `POST /v1/agents` (register an HTTP agent, which the
 * gateway calls by POST; its URL passes the SSRF guard), `DELETE /v1/agents/<name>` (remove an HTTP
 * agent). Registering and removing need `agent:register:<name>`.
 */
export const agentEndpoints: Endpoints = async (replica, request) => {
  const { req, res, principal, path, method } = request;
  if (path === '/v1/agents' && method === 'GET') {
    replica.authorizer.require(principal, 'agent:list');
    return send(res, 200, await replica.registry.list(principal.tenant));
  }
  if (path === '/v1/agents' && method === 'POST') {
    requireJson(req);
    const body = parseBody(HttpAgentBodySchema, await readJson(req, replica.config.maxJsonDepth), 'agent');
    replica.authorizer.require(principal, `agent:register:${body.name}`);
    const url = await checkAgentUrl(body.url, { allowPrivate: replica.config.httpAgentsAllowPrivateResolved });
    const agent = { name: body.name, url: url.toString(), tasks: body.tasks ?? [], timeoutMs: body.timeoutMs };
    await replica.registry.registerHttpAgent({ ...agent, name: qualifiedAgent(principal.tenant, agent.name) });
    if (body.retry !== undefined) await replica.asyncTasks.setAgentRetry(principal.tenant, agent.name, body.retry);
    if (body.cache !== undefined) await replica.resultCache.setPolicy(principal.tenant, agent.name, body.cache);
    replica.logger.info({ agent: agent.name, url: agent.url, principal: principal.id }, 'registered an HTTP agent');
    replica.audit.record(principal.tenant, {
      type: 'http-agent.registered',
      principal: principal.id,
      outcome: 'ok',
      details: { agent: agent.name, url: agent.url },
    });
    return send(res, 201, { name: agent.name, kind: 'http', url: agent.url, tasks: agent.tasks });
  }
  const match = /^\/v1\/agents\/([^/]+)$/.exec(path);
  if (!match || method !== 'DELETE') throw noEndpoint(request);
  const name = decodeURIComponent(match[1]!);
  replica.authorizer.require(principal, `agent:register:${name}`);
  const existed = await replica.registry.removeHttpAgent(qualifiedAgent(principal.tenant, name));
  if (!existed) throw new GatewayError('NOT_FOUND', `no HTTP agent named '${name}'`);
  replica.audit.record(principal.tenant, {
    type: 'http-agent.removed',
    principal: principal.id,
    outcome: 'ok',
    details: { agent: name },
  });
  return send(res, 200, { name, removed: true });
};
