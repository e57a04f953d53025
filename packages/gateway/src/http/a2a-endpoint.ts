import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  deniedPermission,
  GatewayError,
  isTerminal,
  type LedgerTask,
  type Principal,
  type SchemaStore,
  toWireError,
  traceparentOf,
} from '@openclaw/core';
import { AgentNameSchema, NamespaceSchema, type TaskState } from '@openclaw/protocol';
import type { TaskEventRouter } from '../task-events';
import type { TaskCaller } from '../task-operations';
import { GATEWAY_VERSION } from '../version';
import { A2A_ERRORS, type A2aVersion, A2aWire, contextOf, dataOfParts } from './a2a-wire';
import type { ApiRequest, Endpoints, HttpApiReplica } from './endpoint';
import { EventStream, readJson, send } from './http-io';
import { awaitTask, submitTask } from './outside-tasks';

/** What the A2A endpoint needs beyond every endpoint's replica. */
export interface A2aEndpointReplica {
  readonly taskEvents: TaskEventRouter;
  readonly schemaStore: SchemaStore;
}

/** The A2A methods, by their 1.0 names and their 0.3 names. */
const METHODS: Record<string, { op: Operation; version: A2aVersion }> = {
  SendMessage: { op: 'send', version: '1.0' },
  SendStreamingMessage: { op: 'stream', version: '1.0' },
  GetTask: { op: 'get', version: '1.0' },
  CancelTask: { op: 'cancel', version: '1.0' },
  SubscribeToTask: { op: 'subscribe', version: '1.0' },
  GetExtendedAgentCard: { op: 'card', version: '1.0' },
  'message/send': { op: 'send', version: '0.3' },
  'message/stream': { op: 'stream', version: '0.3' },
  'tasks/get': { op: 'get', version: '0.3' },
  'tasks/cancel': { op: 'cancel', version: '0.3' },
  'tasks/resubscribe': { op: 'subscribe', version: '0.3' },
  'agent/getAuthenticatedExtendedCard': { op: 'card', version: '0.3' },
};
type Operation = 'send' | 'stream' | 'get' | 'cancel' | 'subscribe' | 'card';
const PUSH_METHODS =
  /^(CreateTaskPushNotificationConfig|GetTaskPushNotificationConfig|ListTaskPushNotificationConfigs|DeleteTaskPushNotificationConfig|tasks\/pushNotificationConfig\/(set|get|list|delete))$/;
/** `A2A-Version` header values served (none: 0.3, as the specification says). */
const VERSIONS = new Set(['0.3', '0.3.0', '1.0', '1.0.0']);
/** How long `CancelTask` waits for a running task to stop before it answers with the task as it is. */
const CANCEL_WAIT_MS = 5_000;
/** The message metadata that names the agent's task (a skill id). */
const TASK_METADATA = 'openclaw/task';

type RpcId = string | number | null;

/** A JSON-RPC error to answer with. */
class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

/**
 * A2A at `/a2a/<agent>`: every agent of the tenant that the principal may invoke is an A2A agent,
 * with its Agent Card at `/a2a/<agent>/.well-known/agent-card.json` and JSON-RPC 2.0 at
 * `/a2a/<agent>`, in A2A 1.0 and under the 0.3 method names. An A2A task is one of the gateway's
 * async tasks (same id, states, output as its artifact), so it is durable, visible to `task.get`
 * and Mission Control, and can be read, followed or canceled from any replica. Submitting goes
 * through the same gate as a native async `coordinator`: the principal's permission and cluster
 * rate limits, governance on every attempt, approvals (the task is `input-required` meanwhile),
 * the audit (`via: "a2a"`).
 */
export const a2aEndpoint: Endpoints = async (replica, request) => {
  const { res, path, method } = request;
  const match = /^\/a2a\/([^/]+)(\/\.well-known\/(agent-card|agent)\.json)?$/.exec(path);
  let agent = '';
  try {
    agent = match ? decodeURIComponent(match[1]!) : '';
  } catch {
    // A malformed escape: no agent has that name.
  }
  if (!match || !AgentNameSchema.safeParse(agent).success) {
    throw new GatewayError(
      'NOT_FOUND',
      `no A2A agent at ${path}: expected /a2a/<agent> or its /.well-known/agent-card.json`,
    );
  }
  if (match[2] !== undefined) {
    if (method !== 'GET') throw new GatewayError('NOT_FOUND', `no endpoint ${method} ${path}`);
    return send(
      res,
      200,
      await agentCard(replica, request, agent, await offeredTasks(replica, request.principal, agent)),
    );
  }
  if (method !== 'POST') {
    res.writeHead(405, { allow: 'POST', 'content-type': 'application/json' });
    res.end(
      JSON.stringify(rpcError(null, A2A_ERRORS.invalidRequest, `${method} is not served here: POST JSON-RPC 2.0`)),
    );
    return;
  }
  let message: unknown;
  try {
    message = await readJson(request.req, replica.config.maxJsonDepth, replica.config.maxFrameBytes);
  } catch (error) {
    if (error instanceof GatewayError && error.code === 'PAYLOAD_TOO_LARGE') throw error;
    return send(res, 400, rpcError(null, A2A_ERRORS.parse, `the body is not JSON: ${(error as Error).message}`));
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    return send(
      res,
      400,
      rpcError(null, A2A_ERRORS.invalidRequest, 'expected one JSON-RPC 2.0 request (batches are not served)'),
    );
  }
  const { jsonrpc, id, method: rpcMethod, params } = message as Record<string, unknown>;
  const rpcId: RpcId = typeof id === 'string' || typeof id === 'number' ? id : null;
  if (jsonrpc !== '2.0' || typeof rpcMethod !== 'string' || (id !== undefined && id !== null && rpcId === null)) {
    return send(
      res,
      400,
      rpcError(null, A2A_ERRORS.invalidRequest, "expected 'jsonrpc': '2.0', a 'method' and a string or number 'id'"),
    );
  }
  const version = request.req.headers['a2a-version'];
  if (typeof version === 'string' && version !== '' && !VERSIONS.has(version)) {
    return send(
      res,
      200,
      rpcError(rpcId, A2A_ERRORS.versionNotSupported, `A2A version ${version} is not served: 1.0 and 0.3 are`),
    );
  }
  // Own keys only: `toString` or `__proto__` is no method.
  const known = Object.hasOwn(METHODS, rpcMethod) ? METHODS[rpcMethod] : undefined;
  if (!known) {
    const [code, why] = PUSH_METHODS.test(rpcMethod)
      ? [A2A_ERRORS.pushNotSupported, 'push notifications are not offered: stream the task, or read it with GetTask']
      : [A2A_ERRORS.methodNotFound, `method '${rpcMethod}' is not served`];
    return send(res, 200, rpcError(rpcId, code, why));
  }
  if (params !== undefined && (params === null || typeof params !== 'object' || Array.isArray(params))) {
    return send(res, 200, rpcError(rpcId, A2A_ERRORS.invalidParams, "'params' must be an object"));
  }
  const call = new A2aCall(replica, request, agent, new A2aWire(known.version), rpcId);
  return call.run(known.op, (params ?? {}) as Record<string, unknown>);
};

/**
 * The tasks an agent offers a principal: its declared tasks and those with input schemas. The agent
 * is there for a principal that may call it, or list the tenant's agents (an operator, who answers
 * its tasks' questions); a new task still needs `agent:invoke:<agent>`.
 */
async function offeredTasks(replica: HttpApiReplica, principal: Principal, agent: string): Promise<string[]> {
  const { authorizer } = replica;
  const found = (await replica.registry.list(principal.tenant)).find((a) => a.name === agent);
  if (!found || !(authorizer.can(principal, `agent:invoke:${agent}`) || authorizer.can(principal, 'agent:list'))) {
    // Not told apart: an agent of another tenant, or one the principal may not see, is not there.
    throw new GatewayError('NOT_FOUND', `no A2A agent '${agent}' (none of that name you may see)`);
  }
  const { redis, key } = replica.schemaStore;
  const schemas = Object.keys(await redis.hgetall(key(principal.tenant, agent)));
  return [...new Set([...found.tasks, ...schemas])].sort();
}

/** The `message` of a send. */
function messageOf(params: Record<string, unknown>): Record<string, unknown> {
  const { message } = params;
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    throw new RpcError(A2A_ERRORS.invalidParams, "'message' must be an object");
  }
  return message as Record<string, unknown>;
}

/** The data a message's parts carry: the input of a new task, or the answer to a waiting one. */
function partsData(message: Record<string, unknown>): unknown {
  try {
    return dataOfParts(message.parts);
  } catch (error) {
    const text = (error as Error).message;
    throw new RpcError(/a file/.test(text) ? A2A_ERRORS.contentTypeNotSupported : A2A_ERRORS.invalidParams, text);
  }
}

/** The Agent Card of an agent, as the principal sees it. */
async function agentCard(
  replica: HttpApiReplica,
  request: ApiRequest,
  agent: string,
  tasks: string[],
): Promise<Record<string, unknown>> {
  const base = publicBase(request.req);
  const url = `${base}/a2a/${encodeURIComponent(agent)}`;
  const { redis, key } = replica.schemaStore;
  const schemas = await redis.hgetall(key(request.principal.tenant, agent));
  const modes = ['application/json', 'text/plain'];
  return {
    name: agent,
    description: `Agent '${agent}' of an OpenClaw gateway cluster. Each skill is one of its tasks; a message whose metadata names no task ('${TASK_METADATA}') runs its only task. Calls go through the gateway's permissions, governance, approvals and audit.`,
    version: GATEWAY_VERSION,
    provider: { organization: 'OpenClaw Gateway', url: base },
    supportedInterfaces: [
      { url, protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
      { url, protocolBinding: 'JSONRPC', protocolVersion: '0.3' },
    ],
    capabilities: { streaming: true, pushNotifications: false, extendedAgentCard: false },
    securitySchemes: {
      apiKey: { apiKeySecurityScheme: { location: 'header', name: 'x-api-key', description: 'An OpenClaw API key' } },
      bearer: {
        httpAuthSecurityScheme: {
          scheme: 'Bearer',
          bearerFormat: 'JWT',
          description: 'A JWT or OAuth 2.0 access token the gateway accepts',
        },
      },
    },
    securityRequirements: [{ schemes: { apiKey: { list: [] } } }, { schemes: { bearer: { list: [] } } }],
    defaultInputModes: modes,
    defaultOutputModes: modes,
    skills: tasks.map((task) => ({
      id: task,
      name: task,
      description: `Task '${task}' of agent '${agent}'.${schemas[task] ? ` Its input (a data part) matches the JSON Schema ${schemas[task]}` : ''}`,
      tags: [agent],
      inputModes: modes,
      outputModes: modes,
    })),
    // For clients of A2A 0.3, which read the endpoint from the card's top level.
    url,
    protocolVersion: '0.3.0',
    preferredTransport: 'JSONRPC',
  };
}

/** The gateway's address as the client reached it (behind a proxy: its forwarded scheme and host). */
function publicBase(req: IncomingMessage): string {
  const forwarded = req.headers['x-forwarded-proto'];
  const scheme = typeof forwarded === 'string' && /^https?$/.test(forwarded) ? forwarded : 'http';
  const host = req.headers['x-forwarded-host'] ?? req.headers.host ?? 'localhost';
  return `${scheme}://${String(host).split(',')[0]!.trim()}`;
}

/** One JSON-RPC request to an agent's A2A endpoint. */
class A2aCall {
  private readonly res: ServerResponse;
  private readonly caller: TaskCaller;
  /** The event stream, once one has begun: an error then ends it as its last event. */
  private stream: EventStream | undefined;

  constructor(
    private readonly replica: HttpApiReplica,
    private readonly request: ApiRequest,
    private readonly agent: string,
    private readonly wire: A2aWire,
    private readonly id: RpcId,
  ) {
    this.res = request.res;
    this.caller = { principal: request.principal, via: 'a2a' };
    const traceparent = traceparentOf();
    if (traceparent !== undefined) this.caller.traceparent = traceparent;
  }

  async run(op: Operation, params: Record<string, unknown>): Promise<void> {
    try {
      switch (op) {
        case 'send':
          return await this.sendMessage(params);
        case 'stream':
          return await this.streamMessage(params);
        case 'get':
          return this.answer(this.wire.task(await this.visibleTask(params)));
        case 'cancel':
          return await this.cancelTask(params);
        case 'subscribe':
          return await this.subscribe(params);
        case 'card':
          return this.answer(await agentCard(this.replica, this.request, this.agent, await this.offered()));
      }
    } catch (error) {
      this.fail(error, this.stream);
    }
  }

  private answer(result: unknown): void {
    send(this.res, 200, { jsonrpc: '2.0', id: this.id, result });
  }

  /** Answers an error (in the stream, if one has begun): a refusal of the gateway keeps its code in `data`. */
  private fail(error: unknown, stream?: EventStream): void {
    let body: Record<string, unknown>;
    if (error instanceof RpcError) {
      body = rpcError(this.id, error.code, error.message, error.data);
    } else {
      const wire = toWireError(error);
      if (wire.code === 'INTERNAL') this.replica.logger.error({ err: error, agent: this.agent }, 'A2A request failed');
      if (wire.code === 'FORBIDDEN') {
        const { principal } = this.request;
        this.replica.audit.record(principal.tenant, {
          type: 'authz.denied',
          principal: principal.id,
          outcome: 'FORBIDDEN',
          details: { via: 'a2a', agent: this.agent, ...deniedPermission(wire), reason: wire.message },
        });
      }
      const code =
        wire.code === 'BAD_REQUEST'
          ? A2A_ERRORS.invalidParams
          : wire.code === 'INTERNAL'
            ? A2A_ERRORS.internal
            : A2A_ERRORS.server;
      body = rpcError(this.id, code, `${wire.code}: ${wire.message}`, { error: wire });
    }
    if (stream) stream.end(body);
    else if (!this.res.headersSent) send(this.res, 200, body);
    else this.res.end();
  }

  /**
   * `SendMessage`: a new task, or the answer to a task that waits for a person; answered once the
   * task ends or waits again (or at once when not blocking).
   */
  private async sendMessage(params: Record<string, unknown>): Promise<void> {
    const message = messageOf(params);
    const answered = await this.answerWaitingTask(message);
    const task = answered ?? (await this.submit(message, params));
    const config = (params.configuration ?? {}) as { returnImmediately?: unknown; blocking?: unknown };
    const blocking = this.wire.version === '1.0' ? config.returnImmediately !== true : config.blocking !== false;
    // The answer is the task ({task} in 1.0; the task itself, with its kind, in 0.3).
    if (!blocking || isTerminal(task.status)) return this.answer(this.wire.taskEvent(task));
    const settled = await awaitTask(
      this.replica,
      this.caller,
      task,
      this.res,
      (status) => isTerminal(status) || status === 'input-required',
      // An answered task waited for input before: only what happens from now on counts.
      answered ? { from: 'now' } : {},
    );
    if (settled) this.answer(this.wire.taskEvent(settled));
  }

  /**
   * `SendStreamingMessage`: a new task, then its status, progress and artifact as server-sent events;
   * or the answer to a task that waits for a person, then the task as it is and its events from there.
   */
  private async streamMessage(params: Record<string, unknown>): Promise<void> {
    const message = messageOf(params);
    const answered = await this.answerWaitingTask(message);
    if (answered) return this.subscribe({ id: answered.taskId });
    const task = await this.submit(message, params);
    const stream = new EventStream(this.res, this.replica.config.maxBufferedBytes);
    this.stream = stream;
    stream.message(this.event(this.wire.taskEvent(task)));
    // Every event of the task from its start: the first ones may have come before the stream.
    await this.relay(task, '0-0', stream, task.status);
  }

  /** `SubscribeToTask`: the task as it is, then its events until it ends. */
  private async subscribe(params: Record<string, unknown>): Promise<void> {
    const found = await this.visibleTask(params);
    const stream = new EventStream(this.res, this.replica.config.maxBufferedBytes);
    this.stream = stream;
    if (isTerminal(found.status)) return stream.end(this.event(this.wire.taskEvent(found)));
    // Listening first, then the snapshot: an event between the two is sent twice, never lost.
    const early: Record<string, unknown>[] = [];
    let live: ((frame: Record<string, unknown>) => void) | undefined;
    const stop = await this.replica.taskEvents.follow(this.request.principal, found, undefined, (frame) =>
      live ? live(frame) : early.push(frame),
    );
    const snapshot = (await this.replica.asyncTasks.ledger.get(found.taskId)) ?? found;
    stream.message(this.event(this.wire.taskEvent(snapshot)));
    if (isTerminal(snapshot.status)) {
      stop();
      this.res.end();
      return;
    }
    await this.relayFrom(snapshot, stream, snapshot.status, stop, early, (handler) => {
      live = handler;
    });
  }

  /** `CancelTask`: cancels the task, and answers with it once it has stopped (or after a few seconds). */
  private async cancelTask(params: Record<string, unknown>): Promise<void> {
    const task = await this.visibleTask(params);
    if (isTerminal(task.status)) {
      throw new RpcError(
        A2A_ERRORS.taskNotCancelable,
        `task ${task.taskId} has ended (${task.status}): it cannot be canceled`,
      );
    }
    await this.replica.tasks.cancel(this.caller, task.taskId);
    const ended = await awaitTask(this.replica, this.caller, task, this.res, isTerminal, { waitMs: CANCEL_WAIT_MS });
    if (ended) this.answer(this.wire.task(ended));
  }

  /** The task a request names, if it is this agent's and the principal may see it. */
  private async visibleTask(params: Record<string, unknown>): Promise<LedgerTask> {
    const taskId = params.id;
    if (typeof taskId !== 'string' || taskId === '')
      throw new RpcError(A2A_ERRORS.invalidParams, "'id' must be a task id");
    this.replica.tasks.require(this.request.principal, 'task:read');
    let task: LedgerTask | undefined;
    try {
      task = await this.replica.tasks.findAsync(this.request.principal, taskId);
    } catch (error) {
      if (!(error instanceof GatewayError && error.code === 'NOT_FOUND')) throw error;
    }
    if (!task || task.agent !== this.agent || task.kind !== 'task') {
      throw new RpcError(A2A_ERRORS.taskNotFound, `no task '${taskId}' of agent '${this.agent}'`);
    }
    return task;
  }

  /**
   * A message with a `taskId` answers that task, which must wait for a person's input (an agent's
   * question): its parts become the answer, as `task.respond` gives it (`task:respond`, audited
   * `task.responded`). @returns the task as it is after the answer; undefined for a message without
   * a `taskId` (a new task).
   */
  private async answerWaitingTask(message: Record<string, unknown>): Promise<LedgerTask | undefined> {
    const { taskId, contextId } = message;
    if (taskId === undefined || taskId === null || taskId === '') return undefined;
    if (typeof taskId !== 'string') throw new RpcError(A2A_ERRORS.invalidParams, "'message.taskId' must be a task id");
    const task = await this.visibleTask({ id: taskId });
    if (contextId !== undefined && contextId !== '' && contextId !== contextOf(task)) {
      throw new RpcError(
        A2A_ERRORS.invalidParams,
        `task ${task.taskId} belongs to context '${contextOf(task)}', not '${String(contextId)}'`,
      );
    }
    if (isTerminal(task.status)) {
      throw new RpcError(
        A2A_ERRORS.unsupportedOperation,
        `task ${task.taskId} has ended (${task.status}): it takes no more messages; send one without a taskId for a new task`,
      );
    }
    if (task.status !== 'input-required') {
      throw new RpcError(
        A2A_ERRORS.unsupportedOperation,
        `task ${task.taskId} is not waiting for input (${task.status}): only a task that asks for input takes a message`,
      );
    }
    if (task.approvalId !== undefined) {
      throw new RpcError(
        A2A_ERRORS.unsupportedOperation,
        `task ${task.taskId} waits for approval '${task.approvalId}', which an approver decides (openclaw approvals approve|reject), not a message`,
      );
    }
    await this.replica.tasks.respond(this.caller, task.taskId, partsData(message));
    return (await this.replica.asyncTasks.ledger.get(task.taskId)) ?? task;
  }

  /** Submits the message's task: the principal's permission and rate limits first, then the ledger. */
  private async submit(message: Record<string, unknown>, params: Record<string, unknown>): Promise<LedgerTask> {
    const data = partsData(message);
    const task = await this.taskOf(message, params);
    const contextId = message.contextId === undefined || message.contextId === '' ? randomUUID() : message.contextId;
    if (!NamespaceSchema.safeParse(contextId).success) {
      throw new RpcError(
        A2A_ERRORS.invalidParams,
        "message.contextId names the task's memory thread: 1 to 128 of a-z, 0-9, '.', '_', ':', '-', starting with a letter or digit",
      );
    }
    const messageId = message.messageId;
    if (messageId !== undefined && (typeof messageId !== 'string' || messageId.length > 200)) {
      throw new RpcError(A2A_ERRORS.invalidParams, 'message.messageId must be a string of at most 200 characters');
    }
    return submitTask(this.replica, this.caller, {
      agent: this.agent,
      task,
      data,
      thread: contextId as string,
      // A message sent again (a client's retry) is the same task.
      ...(typeof messageId === 'string' && messageId !== ''
        ? { idempotencyKey: `a2a:${this.agent}:${messageId}` }
        : {}),
    });
  }

  /**
   * The agent's tasks, for a new message or its card: the agent must be there (a task already
   * submitted is read, followed and canceled whether or not its agent is connected now).
   */
  private offered(): Promise<string[]> {
    return offeredTasks(this.replica, this.request.principal, this.agent);
  }

  /** The agent's task a message runs: the one its metadata names, or the agent's only task. */
  private async taskOf(message: Record<string, unknown>, params: Record<string, unknown>): Promise<string> {
    const tasks = await this.offered();
    const named =
      (message.metadata as Record<string, unknown> | undefined)?.[TASK_METADATA] ??
      (params.metadata as Record<string, unknown> | undefined)?.[TASK_METADATA];
    if (named !== undefined) {
      if (typeof named !== 'string' || named === '') {
        throw new RpcError(A2A_ERRORS.invalidParams, `metadata '${TASK_METADATA}' must name a task (a skill id)`);
      }
      if (tasks.length > 0 && !tasks.includes(named)) {
        throw new RpcError(
          A2A_ERRORS.invalidParams,
          `agent '${this.agent}' has no task '${named}': its skills are ${tasks.join(', ')}`,
        );
      }
      return named;
    }
    if (tasks.length === 1) return tasks[0]!;
    throw new RpcError(
      A2A_ERRORS.invalidParams,
      tasks.length === 0
        ? `agent '${this.agent}' declares no tasks: name one in the message's metadata '${TASK_METADATA}'`
        : `agent '${this.agent}' has several tasks (${tasks.join(', ')}): name one in the message's metadata '${TASK_METADATA}'`,
    );
  }

  /** Relays a task's events after `after` to a stream, until the task ends or the client hangs up. */
  private async relay(task: LedgerTask, after: string, stream: EventStream, shown: TaskState): Promise<void> {
    const early: Record<string, unknown>[] = [];
    let live: ((frame: Record<string, unknown>) => void) | undefined;
    const stop = await this.replica.taskEvents.follow(this.request.principal, task, after, (frame) =>
      live ? live(frame) : early.push(frame),
    );
    await this.relayFrom(task, stream, shown, stop, early, (handler) => {
      live = handler;
    });
  }

  /**
   * Writes the events of a followed task to the stream: status changes, progress (a `working`
   * status with a message), the output as an artifact; ends the stream when the task ends.
   */
  private relayFrom(
    task: LedgerTask,
    stream: EventStream,
    shown: TaskState,
    stop: () => void,
    early: Record<string, unknown>[],
    goLive: (handler: (frame: Record<string, unknown>) => void) => void,
  ): Promise<void> {
    const contextId = contextOf(task);
    const { wire } = this;
    let last = shown;
    return new Promise<void>((resolve) => {
      let ending = false;
      const finish = (): void => {
        stop();
        this.res.off('close', finish);
        resolve();
      };
      this.res.once('close', finish);
      const onFrame = (frame: Record<string, unknown>): void => {
        if (ending || stream.closed) return;
        if (frame.event === 'task.progress') {
          stream.message(
            this.event(
              wire.statusEvent(
                task.taskId,
                contextId,
                'working',
                wire.message(task.taskId, contextId, [wire.part(frame.progress)]),
                false,
              ),
            ),
          );
          return;
        }
        if (frame.event !== 'task.status') return;
        const status = frame.status as TaskState;
        if (!isTerminal(status)) {
          // A replayed `submitted` after the task was shown further on, or the same status again: nothing new.
          if ((status === 'submitted' && last !== 'submitted') || (status === last && status !== 'input-required')) {
            return;
          }
          last = status;
          const said =
            status === 'input-required'
              ? wire.waitMessage(task.taskId, contextId, frame.question, frame.approvalId as string | undefined)
              : undefined;
          stream.message(this.event(wire.statusEvent(task.taskId, contextId, status, said, false)));
          return;
        }
        ending = true;
        // The record has the output in full (events may leave it out).
        void this.replica.asyncTasks.ledger
          .get(task.taskId)
          .catch(() => undefined)
          .then((record) => {
            const ended = record ?? ({ ...task, status, output: frame.output, error: frame.error } as LedgerTask);
            if (ended.status === 'completed') {
              stream.message(this.event(wire.artifactEvent(task.taskId, contextId, ended.output ?? null)));
            }
            stream.end(
              this.event(wire.statusEvent(task.taskId, contextId, ended.status, wire.statusMessage(ended), true)),
            );
            finish();
          });
      };
      goLive(onFrame);
      for (const frame of early.splice(0)) onFrame(frame);
      if (stream.closed) finish();
    });
  }

  /** A stream event as its JSON-RPC response. */
  private event(result: unknown): Record<string, unknown> {
    return { jsonrpc: '2.0', id: this.id, result };
  }
}

function rpcError(id: RpcId, code: number, message: string, data?: unknown): Record<string, unknown> {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}
