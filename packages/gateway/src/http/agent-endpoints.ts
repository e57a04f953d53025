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

/** How long registering an outside MCP server or A2A agent waits for its tools or its Agent Card. */
const AGENT_READ_TIMEOUT_MS = 10_000;

/**
 * `GET /v1/agents` (the tenant's agents), `POST /v1/agents` (register an HTTP agent, which the
 * gateway calls by POST; its URL passes the SSRF guard), `DELETE /v1/agents/<name>` (remove an HTTP
 * agent). Registering and removing need `agent:register:<name>`. A URL starting with `mcp+` is an
 * outside MCP server: registering it reads its tools, which become the agent's tasks, and their
 * input schemas the agent's (so governance checks the arguments of every call). One starting with
 * `a2a+` is an outside A2A agent's Agent Card: its skills become the tasks, and it is called at the
 * JSON-RPC endpoint the card names.
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
    let endpoint = url;
    if (protocol === 'a2a') {
      // The URL is the Agent Card's; the agent is called at the JSON-RPC endpoint the card names,
      // which must pass the same guard.
      const card = await replica.httpAgents.a2aCard(url.toString(), AGENT_READ_TIMEOUT_MS);
      endpoint = await checkAgentUrl(card.endpoint, { allowPrivate: replica.config.httpAgentsAllowPrivateResolved });
      tasks = offeredTasks(
        card.skills.map((skill) => skill.id),
        body.tasks,
        `the Agent Card at ${url} names no skill`,
        'skills',
      );
    }
    if (protocol === 'mcp') {
      const tools = await replica.httpAgents.mcpTools(`mcp+${url}`, AGENT_READ_TIMEOUT_MS);
      tasks = offeredTasks(
        tools.map((tool) => tool.name),
        body.tasks,
        `the MCP server at ${url} lists no tool`,
        'tools',
      );
      const offered = tools.filter((tool) => tasks.includes(tool.name));
      const schemas = Object.fromEntries(
        offered.filter((tool) => tool.inputSchema !== undefined).map((tool) => [tool.name, tool.inputSchema]),
      );
      await storeSchemas(replica.schemaStore, principal.tenant, body.name, schemas);
    }
    const agent = {
      name: body.name,
      url: protocol === 'http' ? url.toString() : `${protocol}+${endpoint}`,
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

/**
 * The tasks an outside agent offers (its tools or skills), of those `asked` for if any.
 * @throws {GatewayError} `BAD_REQUEST` when none is left, listing what it offers.
 */
function offeredTasks(offers: string[], asked: string[] | undefined, none: string, what: string): string[] {
  const tasks = offers.filter((task) => asked === undefined || asked.includes(task));
  if (tasks.length > 0) return tasks;
  throw new GatewayError('BAD_REQUEST', `${none}${asked ? ' of those named in tasks' : ''}`, {
    details: [{ field: asked ? 'tasks' : 'url', message: `its ${what}: ${offers.join(', ') || 'none'}` }],
  });
}
