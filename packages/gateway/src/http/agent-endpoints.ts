import { agentProtocol, checkAgentUrl, GatewayError, qualifiedAgent, storeSchemas } from '@openclaw/core';
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

/** How long registering an outside MCP server waits for its list of tools. */
const MCP_LIST_TIMEOUT_MS = 10_000;

/**
 * `GET /v1/agents` (the tenant's agents), `POST /v1/agents` (register an HTTP agent, which the
 * gateway calls by POST; its URL passes the SSRF guard), `DELETE /v1/agents/<name>` (remove an HTTP
 * agent). Registering and removing need `agent:register:<name>`. A URL starting with `mcp+` is an
 * outside MCP server: registering it reads its tools, which become the agent's tasks, and their
 * input schemas the agent's (so governance checks the arguments of every call).
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
    const { protocol, url: plain } = agentProtocol(body.url);
    const url = await checkAgentUrl(plain, { allowPrivate: replica.config.httpAgentsAllowPrivateResolved });
    let tasks = body.tasks ?? [];
    if (protocol === 'mcp') {
      const tools = await replica.httpAgents.mcpTools(`mcp+${url}`, MCP_LIST_TIMEOUT_MS);
      const offered = tools.filter((tool) => body.tasks === undefined || body.tasks.includes(tool.name));
      if (offered.length === 0) {
        throw new GatewayError(
          'BAD_REQUEST',
          `the MCP server at ${url} lists no tool${body.tasks ? ' of those named in tasks' : ''}`,
          {
            details: [
              {
                field: body.tasks ? 'tasks' : 'url',
                message: `its tools: ${tools.map((t) => t.name).join(', ') || 'none'}`,
              },
            ],
          },
        );
      }
      tasks = offered.map((tool) => tool.name);
      const schemas = Object.fromEntries(
        offered.filter((tool) => tool.inputSchema !== undefined).map((tool) => [tool.name, tool.inputSchema]),
      );
      await storeSchemas(replica.schemaStore, principal.tenant, body.name, schemas);
    }
    const agent = {
      name: body.name,
      url: protocol === 'mcp' ? `mcp+${url}` : url.toString(),
      tasks,
      timeoutMs: body.timeoutMs,
    };
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
    return send(res, 201, { name: agent.name, kind: 'http', url: agent.url, tasks: agent.tasks, protocol });
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
