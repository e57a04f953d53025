import { EventEmitter } from 'node:events';
import {
  type ActionName,
  type AgentInfo,
  AgentsListResultSchema,
  ApprovalListResultSchema,
  type ApprovalRecord,
  ApprovalRecordSchema,
  CoordinatorResultSchema,
  DEFAULT_LIMITS,
  type DelegateResult,
  DelegateResultSchema,
  type HelloResult,
  PingResultSchema,
  TaskCancelResultSchema,
  TaskProgressEventSchema,
  type TaskRecord,
  TaskRecordSchema,
  type TaskState,
  TaskStatusEventSchema,
  type WorkflowDefinition,
} from '@openclaw/protocol';
import type { AgentHandle, AgentOptions } from './agent-handle';
import {
  type ApprovalEvent,
  ClientEventSink,
  type ClientState,
  type GatewayClientEvents,
  type TaskProgressEvent,
  type TaskStatusEvent,
} from './client-events';
import { type GatewayClientOptions, resolveClientOptions } from './client-options';
import type {
  CallOptions,
  DelegateOptions,
  PingResult,
  RequestOptions,
  SubmitOptions,
  TaskOutcome,
  WaitOptions,
} from './client-requests';
import { GatewayError, UnexpectedFrameError } from './errors';
import { GatewayConnection } from './gateway-connection';
import { isDrainClose, RequestChannel } from './request-channel';
import { parseResult } from './result-parsing';
import { ServedAgents } from './served-agents';
import { MemoryClient, StateClient } from './shared-state';
import { TaskWaits } from './task-waits';

/**
 * How much longer than the gateway's deadline a sync `call()` waits locally. The gateway holds the real
 * deadline and answers `TIMEOUT` itself; the margin covers the trip back.
 */
export const CALL_GRACE_MS = 5_000;

/**
 * A connection to an OpenClaw gateway: requests and their responses, calls to agents, agents served from
 * this process, and reconnection.
 *
 * Usually made with {@link connect}. Built directly, it does nothing until {@link GatewayClient.start}.
 * Requests made while the client is not connected reject at once with `UNAVAILABLE` (retryable); they are
 * not queued. Every request ends: with its response, at its local deadline (`TIMEOUT`), or when the
 * connection drops (`UNAVAILABLE`).
 *
 * Reconnection: after an unexpected close (any code but 1008 from the gateway, or a lost connection) the
 * client reconnects with exponential backoff and full jitter, sends `hello` again and registers again
 * every agent that had registered. It backs off harder when the gateway is overloaded: after 1013 it
 * starts three steps up, and after a refused upgrade with `retryAfterMs` or a `Retry-After` header (a
 * replica at its connection cap, a proxy's 503) it waits that long first. A connection that drops
 * within 10 s of being made does not start the backoff over. It never reconnects after 1008 (credentials revoked), after the
 * gateway refuses its credentials, or after `close()`.
 *
 * @example
 * const client = new GatewayClient({ url: 'ws://127.0.0.1:18789', apiKey });
 * client.on('reconnecting', ({ attempt, delayMs }) => log.warn({ attempt, delayMs }, 'reconnecting'));
 * await client.start();
 */
export class GatewayClient extends EventEmitter<GatewayClientEvents> {
  private readonly events = new ClientEventSink(this);
  private readonly connection: GatewayConnection;
  private readonly requests: RequestChannel;
  private readonly agents: ServedAgents;
  /** {@link GatewayClient.waitForTask}s in progress, by task id. */
  private readonly taskWaits = new TaskWaits();
  private starting: Promise<this> | undefined;
  /** The tenant's shared state: versioned keys in namespaces (docs/state.md). */
  readonly state: StateClient;
  /** The tenant's memory: conversation threads (docs/state.md). */
  readonly memory: MemoryClient;

  constructor(options: GatewayClientOptions) {
    super();
    const resolved = resolveClientOptions(options);
    this.connection = new GatewayConnection(
      resolved,
      {
        request: (action, params) => this.requests.send(action, params, {}),
        reregister: () => this.agents.reregister(),
        onResponse: (frame, text) => this.requests.onResponse(frame, text),
        onEvent: (frame, text) => this.onEvent(frame, text),
        onConnected: () => {
          for (const wait of this.taskWaits.all()) this.events.guard(() => wait.onConnected());
          this.events.guard(() => this.state.onConnected());
        },
        onSocketClosed: (code, reason, byClient) => {
          this.requests.connectionClosed(code, reason, byClient);
          this.agents.detachAll();
        },
        onClientClosed: () => this.requests.clientClosed(),
      },
      this.events,
    );
    this.requests = new RequestChannel(this.connection, this.events, resolved.requestTimeoutMs);
    const send = <T>(action: string, params: Record<string, unknown>) => this.request<T>(action, params);
    this.state = new StateClient(send, (error) => this.events.reportError(error));
    this.memory = new MemoryClient(send);
    this.agents = new ServedAgents({
      request: (action, params) => this.request(action, params),
      sendReply: (frame) => this.requests.sendReply(frame),
      reportError: (error) => this.events.reportError(error),
    });
  }

  /** Where the client is in its life: `idle`, `connecting`, `connected`, `reconnecting` or `closed`. */
  get connectionState(): ClientState {
    return this.connection.state;
  }

  /** The `hello` result of the current connection; undefined before the first, or when `hello` is off. */
  get session(): HelloResult | undefined {
    return this.connection.session;
  }

  /**
   * Opens the connection and sends `hello`. Resolves once connected; rejects with a {@link GatewayError} if
   * the first connection fails (`UNAUTHENTICATED` / `FORBIDDEN` when the gateway refuses the credentials,
   * `UNAVAILABLE` when it cannot be reached). The first connection is not retried. Idempotent.
   */
  start(): Promise<this> {
    this.starting ??= this.connection.start().then(() => this);
    return this.starting;
  }

  /**
   * Closes the connection for good: stops reconnecting, rejects pending requests with `UNAVAILABLE`
   * (not retryable), aborts running agent tasks. Resolves once the socket is closed. Idempotent.
   */
  close(): Promise<void> {
    return this.connection.close();
  }

  /**
   * Sends one request and resolves with its `result`, or rejects with a {@link GatewayError}: the error
   * response's, or `TIMEOUT` / `UNAVAILABLE` / `CANCELED` raised locally. The low-level building block of
   * the other methods.
   *
   * @example
   * const record = await client.request('task.get', { taskId }, { timeoutMs: 2_000 });
   */
  request<TResult = unknown>(
    action: ActionName | (string & {}),
    params: Record<string, unknown> = {},
    options: RequestOptions = {},
  ): Promise<TResult> {
    return this.requests.send(action, params, options) as Promise<TResult>;
  }

  /**
   * Runs task `task` on agent `agent` and waits for its output (`coordinator`, sync mode). Rejects with the
   * gateway's error (`AGENT_NOT_FOUND`, `TIMEOUT`, the agent's `AGENT_ERROR`, ...) as a {@link GatewayError}.
   *
   * @example
   * const { summary } = await client.call<{ summary: string }>('summarizer', 'summarize', { text }, {
   *   timeoutMs: 60_000,
   *   onProgress: (progress) => console.log(progress),
   * });
   */
  async call<TOutput = unknown>(
    agent: string,
    task: string,
    data?: unknown,
    options: CallOptions = {},
  ): Promise<TOutput> {
    let attemptOptions = options;
    return this.requests.withRetries(
      (timeoutMs, lastError) => {
        // A call refused while it waited for an approval (its replica shut down) waits for that same
        // approval where it goes next, rather than asking the approvers again.
        const approvalId = (lastError?.details as { approvalId?: unknown } | undefined)?.approvalId;
        if (typeof approvalId === 'string') attemptOptions = { ...attemptOptions, approvalId };
        return this.callOnce<TOutput>(agent, task, data, attemptOptions, timeoutMs);
      },
      {
        action: 'coordinator',
        timeoutMs: options.timeoutMs ?? DEFAULT_LIMITS.coordinatorTimeoutMs,
        signal: options.signal,
        enabled: options.transparentRetry !== false,
        onRetry: (attempt, delayMs, error) => this.events.emit('call.retry', { agent, task, attempt, delayMs, error }),
      },
    );
  }

  /** One `coordinator` attempt of {@link GatewayClient.call}. */
  private async callOnce<TOutput>(
    agent: string,
    task: string,
    data: unknown,
    options: CallOptions,
    timeoutMs: number,
  ): Promise<TOutput> {
    const params: Record<string, unknown> = { agent, task, timeoutMs, mode: 'sync' };
    if (data !== undefined) params.data = data;
    if (options.idempotencyKey !== undefined) params.idempotencyKey = options.idempotencyKey;
    if (options.delegation !== undefined) params.delegation = options.delegation;
    if (options.parentTaskId !== undefined) params.parentTaskId = options.parentTaskId;
    if (options.approvalId !== undefined) params.approvalId = options.approvalId;
    if (options.traceparent !== undefined) params.traceparent = options.traceparent;
    if (options.thread !== undefined) params.thread = options.thread;
    if (options.cache !== undefined) params.cache = options.cache;
    const result = parseResult(
      CoordinatorResultSchema,
      await this.requests
        .send('coordinator', params, {
          timeoutMs: timeoutMs + CALL_GRACE_MS,
          signal: options.signal,
          onProgress: options.onProgress,
          // Before any progress the task id is unknown: cancel by the coordinator request's id instead.
          onAbort: (taskId, requestId) => {
            const target = taskId !== undefined ? { taskId } : { requestId };
            this.requests.send('task.cancel', target, {}).catch(() => undefined);
          },
        })
        .catch((error: unknown) => {
          // A draining replica closes (1001, with its own reason) only connections with nothing in hand,
          // and handles nothing that arrives after: a call it left unanswered never reached an agent. A
          // 1001 from anything else on the way (a proxy) says nothing of the sort.
          if (error instanceof GatewayError && isDrainClose(error)) throw error.undispatched();
          throw error;
        }),
      'coordinator',
    );
    if (result.status !== 'completed') {
      throw new GatewayError('INTERNAL', `the gateway answered a sync call with status '${result.status}'`);
    }
    return result.output as TOutput;
  }

  /**
   * Submits a task to run in the background (`coordinator`, async mode) and resolves with its id once the
   * gateway has stored it. Its progress comes as `'task.status'` / `'task.progress'` events to this client.
   */
  async submit(
    agent: string,
    task: string,
    data?: unknown,
    options: SubmitOptions = {},
  ): Promise<{ taskId: string; status: 'submitted' }> {
    const params: Record<string, unknown> = { agent, task, mode: 'async' };
    if (data !== undefined) params.data = data;
    if (options.timeoutMs !== undefined) params.timeoutMs = options.timeoutMs;
    if (options.idempotencyKey !== undefined) params.idempotencyKey = options.idempotencyKey;
    if (options.retry !== undefined) params.retry = options.retry;
    if (options.escalation !== undefined) params.escalation = options.escalation;
    if (options.thread !== undefined) params.thread = options.thread;
    const result = (await this.request('coordinator', params, { signal: options.signal })) as {
      taskId?: unknown;
      status?: unknown;
    };
    if (typeof result?.taskId !== 'string' || typeof result.status !== 'string') {
      throw new GatewayError('INTERNAL', 'the gateway answered an async call without a task id');
    }
    // A repeated idempotency key answers the first task's current status.
    return { taskId: result.taskId, status: result.status as 'submitted' };
  }

  /**
   * Starts a workflow (`workflow.start`; see docs/coordination.md for the definition) and resolves with
   * its task id once the gateway has stored it. Follow it with {@link GatewayClient.waitForTask}.
   * @example
   * const { taskId } = await client.startWorkflow({ steps: [
   *   { id: 'fetch', agent: 'fetcher', task: 'fetch' },
   *   { id: 'clean', agent: 'cleaner', task: 'clean' },
   * ] }, { url });
   */
  async startWorkflow(
    workflow: WorkflowDefinition,
    input?: unknown,
    options: { idempotencyKey?: string; signal?: AbortSignal; thread?: string } = {},
  ): Promise<{ taskId: string; status: TaskState }> {
    const params: Record<string, unknown> = { workflow, input: input ?? null };
    if (options.idempotencyKey !== undefined) params.idempotencyKey = options.idempotencyKey;
    if (options.thread !== undefined) params.thread = options.thread;
    return (await this.request('workflow.start', params, { signal: options.signal })) as {
      taskId: string;
      status: TaskState;
    };
  }

  /**
   * Resolves when an async task or workflow ends, with how it ended (a failed task resolves too: look at
   * `status` and `error`). Survives reconnection: after the client reconnects, to any replica, it
   * subscribes again after the last event it saw, so no event is lost or seen twice.
   * @example
   * const { taskId } = await client.submit('reporter', 'report', data);
   * const outcome = await client.waitForTask(taskId, { onProgress: (p) => console.log(p) });
   */
  waitForTask(taskId: string, options: WaitOptions = {}): Promise<TaskOutcome> {
    return this.taskWaits.wait(taskId, (after) => this.taskSubscribe(taskId, { after }), options);
  }

  /** Answers a task waiting for a human (`task.respond`): the answer becomes its output. */
  async taskRespond(taskId: string, output: unknown, options: RequestOptions = {}): Promise<void> {
    await this.request('task.respond', { taskId, output }, options);
  }

  /** Runs a failed or canceled async task again from its first attempt (`task.retry`). */
  async taskRetry(taskId: string, options: RequestOptions = {}): Promise<void> {
    await this.request('task.retry', { taskId }, options);
  }

  /** The tenant's async tasks in a status, newest change first (`task.list`; default `failed`). */
  async taskList(
    status: TaskState = 'failed',
    options: RequestOptions & { limit?: number } = {},
  ): Promise<TaskRecord[]> {
    const params: Record<string, unknown> = { status };
    if (options.limit !== undefined) params.limit = options.limit;
    return (await this.request('task.list', params, options)) as TaskRecord[];
  }

  /** The tenant's approvals (`approval.list`): pending ones unless told otherwise. Needs `approval:read`. */
  async approvalList(
    status: ApprovalRecord['status'] | 'all' = 'pending',
    options: RequestOptions & { limit?: number } = {},
  ): Promise<ApprovalRecord[]> {
    const params: Record<string, unknown> = { status };
    if (options.limit !== undefined) params.limit = options.limit;
    return parseResult(ApprovalListResultSchema, await this.request('approval.list', params, options), 'approval.list');
  }

  /** One approval (`approval.get`): for principals with `approval:read`, and for the caller whose message it holds. */
  async approvalGet(approvalId: string, options: RequestOptions = {}): Promise<ApprovalRecord> {
    return parseResult(
      ApprovalRecordSchema,
      await this.request('approval.get', { approvalId }, options),
      'approval.get',
    );
  }

  /**
   * Approves or rejects a pending approval (`approval.decide`). Needs `approval:decide` (and the
   * approval's role, if it names one). Resolves with the approval as it now stands.
   */
  async approvalDecide(
    approvalId: string,
    decision: 'approve' | 'reject',
    reason?: string,
    options: RequestOptions = {},
  ): Promise<ApprovalRecord> {
    const params: Record<string, unknown> = { approvalId, decision };
    if (reason !== undefined) params.reason = reason;
    return parseResult(ApprovalRecordSchema, await this.request('approval.decide', params, options), 'approval.decide');
  }

  /** The agents the gateway knows (`agents.list`). */
  async agentsList(options: RequestOptions = {}): Promise<AgentInfo[]> {
    return parseResult(AgentsListResultSchema, await this.request('agents.list', {}, options), 'agents.list');
  }

  /** Checks the connection end to end (`ping`) and measures the round trip. */
  async ping(options: RequestOptions = {}): Promise<PingResult> {
    const sentAt = performance.now();
    const result = parseResult(PingResultSchema, await this.request('ping', {}, options), 'ping');
    return { ...result, rttMs: performance.now() - sentAt };
  }

  /** The record of a task (`task.get`). Rejects with `NOT_FOUND` for an unknown id. */
  async taskGet(taskId: string, options: RequestOptions = {}): Promise<TaskRecord> {
    return parseResult(TaskRecordSchema, await this.request('task.get', { taskId }, options), 'task.get');
  }

  /**
   * Mints a delegation token with which `agent` may call other agents on this principal's behalf,
   * with at most `permissions` (`delegate`). The gateway refuses to widen rights or exceed the depth.
   * @example
   * const { token } = await client.delegate('orchestrator', ['agent:invoke:billing-*'], { maxDepth: 2 });
   */
  async delegate(
    agent: string,
    permissions: readonly string[],
    options: DelegateOptions = {},
  ): Promise<DelegateResult> {
    const params: Record<string, unknown> = { agent, permissions: [...permissions] };
    if (options.ttlSeconds !== undefined) params.ttlSeconds = options.ttlSeconds;
    if (options.maxDepth !== undefined) params.maxDepth = options.maxDepth;
    if (options.parent !== undefined) params.parent = options.parent;
    if (options.principal !== undefined) params.principal = options.principal;
    return parseResult(DelegateResultSchema, await this.request('delegate', params, {}), 'delegate');
  }

  /** Cancels a task that has not ended (`task.cancel`). */
  async taskCancel(taskId: string, options: RequestOptions = {}): Promise<{ taskId: string; status: 'canceled' }> {
    return parseResult(TaskCancelResultSchema, await this.request('task.cancel', { taskId }, options), 'task.cancel');
  }

  /**
   * Subscribes this connection to a task's `'task.status'` and `'task.progress'` events (`task.subscribe`).
   * Subscriptions belong to the connection: after a reconnection, subscribe again.
   */
  async taskSubscribe(
    taskId: string,
    options: RequestOptions & { after?: string } = {},
  ): Promise<{ taskId: string; status: TaskState }> {
    const params: Record<string, unknown> = { taskId };
    if (options.after !== undefined) params.after = options.after;
    return (await this.request('task.subscribe', params, options)) as { taskId: string; status: TaskState };
  }

  /**
   * An agent served by this client. Add handlers, then `await handle.register()`; see {@link AgentHandle}.
   * Throws a `TypeError` for a name the protocol does not allow, and an `Error` if this client already
   * has an agent of that name.
   */
  agent(name: string, options: AgentOptions = {}): AgentHandle {
    return this.agents.add(name, options);
  }

  /** Hands an event from the gateway to whom it concerns: the agents, the call or wait it belongs to, listeners. */
  private onEvent(frame: Record<string, unknown>, text: string): void {
    switch (frame.event) {
      case 'task':
        this.agents.onTask(frame, text);
        return;
      case 'task.cancel':
        this.agents.onCancel(frame, text);
        return;
      case 'task.progress': {
        if (!TaskProgressEventSchema.safeParse(frame).success) {
          this.events.reportError(new UnexpectedFrameError('the gateway sent a malformed task.progress event', text));
          return;
        }
        const event: TaskProgressEvent = { taskId: frame.taskId as string, progress: frame.progress };
        if (typeof frame.id === 'string' || typeof frame.id === 'number') event.id = frame.id;
        if (typeof frame.cursor === 'string') event.cursor = frame.cursor;
        if (typeof frame.id === 'number') {
          const listener = this.requests.progressListener(frame.id, event.taskId);
          if (listener) this.events.guard(() => listener(event.progress, { taskId: event.taskId }));
        }
        for (const wait of this.taskWaits.of(event.taskId)) this.events.guard(() => wait.onProgress(event));
        this.events.emit('task.progress', event);
        return;
      }
      case 'task.status': {
        const parsed = TaskStatusEventSchema.safeParse(frame);
        if (!parsed.success) {
          this.events.reportError(new UnexpectedFrameError('the gateway sent a malformed task.status event', text));
          return;
        }
        const { taskId, status, output, error, cursor, attempt, question, parentId } = parsed.data;
        const event: TaskStatusEvent = { taskId, status };
        if (output !== undefined) event.output = output;
        if (error !== undefined) event.error = error;
        if (cursor !== undefined) event.cursor = cursor;
        if (attempt !== undefined) event.attempt = attempt;
        if (question !== undefined) event.question = question;
        if (parentId !== undefined) event.parentId = parentId;
        for (const wait of this.taskWaits.of(taskId)) this.events.guard(() => wait.onStatus(event));
        this.events.emit('task.status', event);
        return;
      }
      case 'state.changed':
        this.state.onChanged(frame);
        return;
      case 'approval.required':
      case 'approval.requested':
      case 'approval.updated':
        this.events.emit(frame.event, frame as unknown as ApprovalEvent);
        return;
      default:
      // Events this version does not know are a newer gateway's additions: ignored, not errors.
    }
  }
}

/**
 * Opens a connection to a gateway, sends `hello`, and resolves with the connected client. The first
 * connection is not retried: it rejects with a {@link GatewayError} (`UNAUTHENTICATED`, `FORBIDDEN`,
 * `UNAVAILABLE`, ...). Later drops are reconnected per `options.reconnect`.
 *
 * @example
 * import { connect, GatewayError } from '@openclaw/sdk';
 *
 * const client = await connect({ url: 'ws://127.0.0.1:18789', apiKey: 'my-key', clientName: 'billing' });
 *
 * // Serve an agent.
 * const agent = client.agent('invoice-reader', { concurrency: 2 });
 * agent.handle('extract', async (data: { url: string }, ctx) => {
 *   ctx.progress({ stage: 'downloading' });
 *   const response = await fetch(data.url, { signal: ctx.signal });
 *   return { bytes: (await response.arrayBuffer()).byteLength };
 * });
 * await agent.register();
 *
 * // Call one.
 * try {
 *   const output = await client.call('invoice-reader', 'extract', { url }, { timeoutMs: 20_000 });
 * } catch (error) {
 *   if (error instanceof GatewayError && error.code === 'AGENT_NOT_FOUND') console.warn('no reader running');
 * }
 *
 * await client.close();
 */
export function connect(options: GatewayClientOptions): Promise<GatewayClient> {
  return new GatewayClient(options).start();
}
