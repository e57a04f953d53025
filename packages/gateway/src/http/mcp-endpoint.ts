import { randomUUID } from 'node:crypto';
import {
  type AgentRegistry,
  type Authorizer,
  GatewayError,
  isTerminal,
  type LedgerTask,
  type Principal,
  type SchemaStore,
  type TaskDispatcher,
  toWireError,
  traceparentOf,
} from '@openclaw/core';
import { MAX_TIMEOUT_MS, type TaskState, type WireError } from '@openclaw/protocol';
import { callLimits } from '../session-hub';
import type { TaskCaller } from '../task-operations';
import { GATEWAY_VERSION } from '../version';
import type { ApiRequest, Endpoints } from './endpoint';
import { EventStream, readJson, send } from './http-io';
import { awaitTask, submitTask } from './outside-tasks';
import { waitingFor } from './waiting-for';

/** What the MCP endpoint needs beyond every endpoint's replica. */
export interface McpEndpointReplica {
  readonly dispatcher: TaskDispatcher;
  readonly schemaStore: SchemaStore;
}

/** MCP protocol versions this server speaks, newest first; a client's other version gets the newest. */
const PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];
/** A tool name as MCP clients accept it. */
const TOOL_NAME = /^[A-Za-z0-9._-]{1,128}$/;
/** JSON-RPC error codes. */
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INVALID_PARAMS = -32602;
/** MCP task statuses of the gateway's task states. */
const MCP_STATUS: Record<TaskState, string> = {
  submitted: 'working',
  working: 'working',
  'input-required': 'input_required',
  completed: 'completed',
  failed: 'failed',
  rejected: 'failed',
  canceled: 'cancelled',
};
/** How often a client should read a running task (`pollInterval`). */
const POLL_INTERVAL_MS = 500;
/** How long `tasks/cancel` waits for a running task to stop before it answers with the task as it is. */
const CANCEL_WAIT_MS = 5_000;
/** The `_meta` key that ties a result to its task. */
const RELATED_TASK = 'io.modelcontextprotocol/related-task';
/** How long a tool call may take when the client does not say (`_meta["openclaw/timeoutMs"]`). */
const DEFAULT_TOOL_TIMEOUT_MS = 30_000;

type JsonRpcId = string | number | null;

/** One tool: a task of an agent that declared an input schema for it. */
interface Tool {
  name: string;
  agent: string;
  task: string;
  inputSchema: Record<string, unknown>;
  /** The task's data is not an object: the tool takes it as its one argument, `data`. */
  wrapped: boolean;
}

/**
 * MCP over Streamable HTTP at `/mcp` (stateless: every POST stands alone, no session). The tenant's
 * agents appear as tools: each task an agent declared an input schema for (`inputSchemas` at
 * `register`) that the principal may invoke, named `<agent>.<task>`. `tools/call` is a sync call
 * through the same gate as a native `coordinator` call: the principal's permission and rate limits,
 * the three governance tiers, approvals (waited for within the deadline), the audit. With a
 * `progressToken` the answer is a stream of server-sent events: each `task.progress` of the agent as
 * `notifications/progress`, then the result. A client that hangs up cancels the call.
 */
export const mcpEndpoint: Endpoints = async (replica, request) => {
  const { req, res, method } = request;
  if (method !== 'POST') {
    // Stateless: no stream of server-initiated messages, no session to end.
    res.writeHead(405, { allow: 'POST', 'content-type': 'application/json' });
    res.end(JSON.stringify(rpcError(null, INVALID_REQUEST, `${method} is not served here: POST JSON-RPC messages`)));
    return;
  }
  let message: unknown;
  try {
    message = await readJson(req, replica.config.maxJsonDepth, replica.config.maxFrameBytes);
  } catch (error) {
    if (error instanceof GatewayError && error.code === 'PAYLOAD_TOO_LARGE') throw error;
    return send(res, 400, rpcError(null, PARSE_ERROR, `the body is not JSON: ${(error as Error).message}`));
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    return send(
      res,
      400,
      rpcError(null, INVALID_REQUEST, 'expected one JSON-RPC 2.0 message (batches are not served)'),
    );
  }
  const { jsonrpc, id, method: rpcMethod, params } = message as Record<string, unknown>;
  if (jsonrpc !== '2.0' || typeof rpcMethod !== 'string') {
    return send(res, 400, rpcError(null, INVALID_REQUEST, "expected 'jsonrpc': '2.0' and a 'method'"));
  }
  // A notification (or a client's response) gets no answer.
  if (id === undefined) {
    res.writeHead(202).end();
    return;
  }
  if (typeof id !== 'string' && typeof id !== 'number') {
    return send(res, 400, rpcError(null, INVALID_REQUEST, "'id' must be a string or a number"));
  }
  const answer = (result: unknown) => send(res, 200, { jsonrpc: '2.0', id, result });
  switch (rpcMethod) {
    case 'initialize': {
      const asked = (params as { protocolVersion?: unknown } | undefined)?.protocolVersion;
      return answer({
        protocolVersion: typeof asked === 'string' && PROTOCOL_VERSIONS.includes(asked) ? asked : PROTOCOL_VERSIONS[0],
        capabilities: {
          tools: { listChanged: false },
          // Tool calls may run as tasks (MCP 2025-11-25): the gateway's async tasks.
          tasks: { cancel: {}, requests: { tools: { call: {} } } },
        },
        serverInfo: { name: 'openclaw-gateway', version: GATEWAY_VERSION },
        instructions:
          "Each tool is a task of an agent of this gateway's cluster, named <agent>.<task>; calls go through the gateway's permissions, governance and audit.",
      });
    }
    case 'ping':
      return answer({});
    case 'tools/list':
      return answer({ tools: (await toolsOf(replica, request.principal)).map(describe) });
    case 'tools/call':
      return (params as { task?: unknown } | undefined)?.task !== undefined
        ? callToolAsTask(replica, request, id, params)
        : callTool(replica, request, id, params);
    case 'tasks/get':
    case 'tasks/result':
    case 'tasks/cancel':
      return taskRequest(replica, request, id, rpcMethod, params);
    default:
      return send(res, 200, rpcError(id, METHOD_NOT_FOUND, `method '${rpcMethod}' is not served`));
  }
};

/** The MCP description of a tool. */
function describe(tool: Tool): Record<string, unknown> {
  return {
    name: tool.name,
    title: `${tool.agent}: ${tool.task}`,
    description: `Runs task '${tool.task}' of agent '${tool.agent}' through the OpenClaw gateway.${
      tool.wrapped ? " The task's data is the argument 'data'." : ''
    }`,
    inputSchema: tool.inputSchema,
    // Long calls may run as tasks (`params.task`), read with tasks/get and tasks/result.
    execution: { taskSupport: 'optional' },
  };
}

/** The tools a principal may call: its tenant's agents' tasks with input schemas, by name. */
async function toolsOf(
  replica: { registry: AgentRegistry; authorizer: Authorizer; schemaStore: SchemaStore },
  principal: Principal,
): Promise<Tool[]> {
  const agents = (await replica.registry.list(principal.tenant)).filter((agent) =>
    replica.authorizer.can(principal, `agent:invoke:${agent.name}`),
  );
  const { redis, key } = replica.schemaStore;
  const schemas = await Promise.all(agents.map((agent) => redis.hgetall(key(principal.tenant, agent.name))));
  const tools: Tool[] = [];
  agents.forEach((agent, i) => {
    for (const [task, text] of Object.entries(schemas[i] ?? {})) {
      const name = `${agent.name}.${task}`;
      if (!TOOL_NAME.test(name)) continue;
      let schema: Record<string, unknown>;
      try {
        schema = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      const wrapped = schema.type !== 'object';
      const inputSchema = wrapped ? { type: 'object', properties: { data: schema }, required: ['data'] } : schema;
      tools.push({ name, agent: agent.name, task, inputSchema, wrapped });
    }
  });
  return tools.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The tool a `tools/call` names and the task data of its arguments; a string says what is wrong. */
async function toolCall(
  replica: Parameters<Endpoints>[0],
  principal: Principal,
  params: unknown,
): Promise<{ tool: Tool; data: unknown } | string> {
  const p = (params ?? {}) as { name?: unknown; arguments?: unknown };
  if (typeof p.name !== 'string') return "'name' must be a tool name";
  if (
    p.arguments !== undefined &&
    (p.arguments === null || typeof p.arguments !== 'object' || Array.isArray(p.arguments))
  ) {
    return "'arguments' must be an object";
  }
  const matching = (await toolsOf(replica, principal)).filter((tool) => tool.name === p.name);
  if (matching.length !== 1) {
    return `tool '${p.name}': ${matching.length === 0 ? 'no such tool, or not one you may call' : 'two agents give tools of this name'}`;
  }
  const tool = matching[0]!;
  const args = (p.arguments ?? {}) as Record<string, unknown>;
  return { tool, data: tool.wrapped ? (args.data ?? null) : args };
}

/**
 * `tools/call` with `task`: the call runs as one of the gateway's async tasks (durable, governed on
 * every attempt, held in `input_required` for an approval). Answered at once with the task; the
 * client reads it with `tasks/get`, its result with `tasks/result`, and may cancel it.
 */
async function callToolAsTask(
  replica: Parameters<Endpoints>[0],
  request: ApiRequest,
  id: string | number,
  params: unknown,
): Promise<void> {
  const { res, principal } = request;
  const p = (params ?? {}) as { task?: unknown; _meta?: Record<string, unknown> };
  if (p.task === null || typeof p.task !== 'object' || Array.isArray(p.task)) {
    return send(res, 200, rpcError(id, INVALID_PARAMS, "'task' must be an object ({ttl?})"));
  }
  const called = await toolCall(replica, principal, params);
  if (typeof called === 'string') return send(res, 200, rpcError(id, INVALID_PARAMS, called));
  try {
    const task = await submitTask(replica, taskCaller(principal), {
      agent: called.tool.agent,
      task: called.tool.task,
      data: called.data,
      timeoutMs: toolTimeout(p._meta?.['openclaw/timeoutMs']),
    });
    send(res, 200, { jsonrpc: '2.0', id, result: { task: mcpTask(task) } });
  } catch (error) {
    const wire = toWireError(error);
    send(res, 200, { jsonrpc: '2.0', id, result: toolError(wire, '') });
  }
}

/** `tasks/get`, `tasks/result` (waits for the end) and `tasks/cancel` of a tool call run as a task. */
async function taskRequest(
  replica: Parameters<Endpoints>[0],
  request: ApiRequest,
  id: string | number,
  method: string,
  params: unknown,
): Promise<void> {
  const { res, principal } = request;
  const taskId = (params as { taskId?: unknown } | undefined)?.taskId;
  if (typeof taskId !== 'string' || taskId === '')
    return send(res, 200, rpcError(id, INVALID_PARAMS, "'taskId' must be a task id"));
  const caller = taskCaller(principal);
  replica.tasks.require(principal, 'task:read');
  const task = await replica.tasks.findAsync(principal, taskId).catch((error: unknown) => {
    if (error instanceof GatewayError && error.code === 'NOT_FOUND') return undefined;
    throw error;
  });
  if (task?.kind !== 'task') return send(res, 200, rpcError(id, INVALID_PARAMS, `no task '${taskId}'`));
  const answer = (result: unknown) => send(res, 200, { jsonrpc: '2.0', id, result });
  if (method === 'tasks/get') return answer(mcpTask(task));
  if (method === 'tasks/cancel') {
    if (isTerminal(task.status)) {
      return send(
        res,
        200,
        rpcError(id, INVALID_PARAMS, `task ${taskId} has ended (${task.status}): it cannot be canceled`),
      );
    }
    await replica.tasks.cancel(caller, taskId);
    const ended = await awaitTask(replica, caller, task, res, isTerminal, { waitMs: CANCEL_WAIT_MS });
    if (ended) answer(mcpTask(ended));
    return;
  }
  const ended = await awaitTask(replica, caller, task, res, isTerminal);
  if (!ended) return;
  const related = { [RELATED_TASK]: { taskId } };
  const result =
    ended.status === 'completed'
      ? toolResult(ended.output ?? null, taskId)
      : toolError(
          ended.error ?? { code: 'CANCELED', message: `the task ended ${ended.status}`, retryable: false },
          taskId,
        );
  answer({ ...result, _meta: { ...(result._meta as object), ...related } });
}

/** A principal calling over MCP, for the task operations and their audit. */
function taskCaller(principal: Principal): TaskCaller {
  const caller: TaskCaller = { principal, via: 'mcp' };
  const traceparent = traceparentOf();
  if (traceparent !== undefined) caller.traceparent = traceparent;
  return caller;
}

/** A gateway task as an MCP task. */
function mcpTask(task: LedgerTask): Record<string, unknown> {
  const out: Record<string, unknown> = {
    taskId: task.taskId,
    status: MCP_STATUS[task.status],
    ttl: task.retentionMs,
    createdAt: new Date(task.createdAt).toISOString(),
    lastUpdatedAt: new Date(task.updatedAt).toISOString(),
    pollInterval: POLL_INTERVAL_MS,
  };
  if (task.error !== undefined) out.statusMessage = `${task.error.code}: ${task.error.message}`;
  else if (task.status === 'input-required') out.statusMessage = waitingFor(task.question, task.approvalId);
  return out;
}

/** `tools/call`: the task as a sync call, its progress streamed when the client asked for it. */
async function callTool(
  replica: Parameters<Endpoints>[0],
  request: ApiRequest,
  id: string | number,
  params: unknown,
): Promise<void> {
  const { res, principal } = request;
  const p = (params ?? {}) as { _meta?: Record<string, unknown> };
  const called = await toolCall(replica, principal, params);
  if (typeof called === 'string') return send(res, 200, rpcError(id, INVALID_PARAMS, called));
  const { tool, data } = called;
  const token = p._meta?.progressToken;
  const timeoutMs = toolTimeout(p._meta?.['openclaw/timeoutMs']);
  const stream =
    typeof token === 'string' || typeof token === 'number'
      ? new EventStream(res, replica.config.maxBufferedBytes)
      : undefined;

  const taskId = randomUUID();
  let settled = false;
  const hungUp = (): void => {
    if (!settled) replica.dispatcher.cancelLocal(taskId);
  };
  res.once('close', hungUp);
  const started = performance.now();
  let outcome = 'ok';
  let result: Record<string, unknown>;
  try {
    replica.authorizer.require(principal, `agent:invoke:${tool.agent}`);
    let step = 0;
    const handle = await replica.dispatcher.dispatch({
      agent: tool.agent,
      task: tool.task,
      data,
      timeoutMs,
      taskId,
      caller: {
        principal: principal.id,
        tenant: principal.tenant,
        limits: callLimits(replica.config, principal),
        roles: principal.roles,
      },
      traceparent: traceparentOf(),
      onProgress: (progress) => {
        step += 1;
        stream?.message({
          jsonrpc: '2.0',
          method: 'notifications/progress',
          params: { progressToken: token, progress: step, message: progressText(progress) },
        });
      },
      approval: {
        mode: 'wait',
        onPending: (approval) => {
          step += 1;
          stream?.message({
            jsonrpc: '2.0',
            method: 'notifications/progress',
            params: {
              progressToken: token,
              progress: step,
              message: `waiting for an approval (${approval.validator}${approval.reason ? `: ${approval.reason}` : ''}); approval ${approval.approvalId}`,
            },
          });
        },
      },
    });
    const output = await handle.output;
    result = toolResult(output, handle.taskId);
  } catch (error) {
    const wire = toWireError(error);
    outcome = wire.code;
    result = toolError(wire, taskId);
  } finally {
    settled = true;
    res.off('close', hungUp);
    replica.audit.record(principal.tenant, {
      type: 'task.routed',
      principal: principal.id,
      outcome,
      details: {
        agent: tool.agent,
        task: tool.task,
        taskId,
        ms: Math.round(performance.now() - started),
        via: 'mcp',
      },
    });
  }
  const response = { jsonrpc: '2.0', id, result };
  if (stream) stream.end(response);
  else send(res, 200, response);
}

/** A tool call's deadline: the client's (`_meta["openclaw/timeoutMs"]`), within the protocol's bounds. */
function toolTimeout(asked: unknown): number {
  if (typeof asked === 'number' && Number.isInteger(asked) && asked >= 1) return Math.min(asked, MAX_TIMEOUT_MS);
  return DEFAULT_TOOL_TIMEOUT_MS;
}

/** An agent's output as a tool result: as JSON text, and as structured content when it is an object. */
function toolResult(output: unknown, taskId: string): Record<string, unknown> {
  const text = typeof output === 'string' ? output : (JSON.stringify(output ?? null) ?? 'null');
  const result: Record<string, unknown> = {
    content: [{ type: 'text', text }],
    _meta: { 'openclaw/taskId': taskId },
  };
  if (output !== null && typeof output === 'object' && !Array.isArray(output)) result.structuredContent = output;
  return result;
}

/** A refused or failed call as a tool error the model can read: the protocol's code and message. */
function toolError(wire: WireError, taskId: string): Record<string, unknown> {
  return {
    isError: true,
    content: [{ type: 'text', text: `${wire.code}: ${wire.message}` }],
    structuredContent: { error: wire },
    _meta: { 'openclaw/taskId': taskId },
  };
}

function progressText(progress: unknown): string {
  return typeof progress === 'string' ? progress : (JSON.stringify(progress) ?? 'null');
}

function rpcError(id: JsonRpcId, code: number, message: string): Record<string, unknown> {
  return { jsonrpc: '2.0', id, error: { code, message } };
}
