import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import {
  type ActionName,
  type AgentInfo,
  AgentNameSchema,
  AgentsListResultSchema,
  ApprovalListResultSchema,
  type ApprovalRecord,
  ApprovalRecordSchema,
  CloseCode,
  CoordinatorResultSchema,
  DEFAULT_LIMITS,
  type DelegateResult,
  DelegateResultSchema,
  DRAIN_CLOSE_REASON,
  type ErrorCode,
  type HelloResult,
  HelloResultSchema,
  PingResultSchema,
  PROTOCOL_VERSION,
  ResponseSchema,
  TaskCancelEventSchema,
  TaskCancelResultSchema,
  type TaskEvent,
  TaskEventSchema,
  TaskProgressEventSchema,
  type TaskRecord,
  TaskRecordSchema,
  type TaskState,
  TaskStatusEventSchema,
  type WireError,
  WireErrorSchema,
  type WorkflowDefinition,
} from '@openclaw/protocol';
import WebSocket from 'ws';
import { AgentHandle, type AgentOptions, type AgentTransport } from './agent-handle';
import { backoffCap, backoffDelay } from './backoff';
import type {
  ApprovalEvent,
  ClientState,
  GatewayClientEvents,
  TaskProgressEvent,
  TaskStatusEvent,
} from './client-events';
import { type GatewayClientOptions, type ResolvedClientOptions, resolveClientOptions } from './client-options';
import { GatewayError, UnexpectedFrameError } from './errors';
import { PendingRequests, type ProgressListener } from './pending-requests';
import { parseResult } from './result-parsing';
import { TaskWaits } from './task-waits';
import { clampTimer } from './timer';
import { SDK_VERSION } from './version';

/** Options of {@link GatewayClient.request}. */
export interface RequestOptions {
  /** Local deadline, in milliseconds. Default: the client's `requestTimeoutMs`. */
  timeoutMs?: number;
  /** Aborting it rejects the request with `CANCELED` (the gateway may still carry it out). */
  signal?: AbortSignal;
}

/** Options of {@link GatewayClient.call}. */
export interface CallOptions {
  /** The task's deadline at the gateway, in milliseconds. Default 30 000 (the protocol's default). */
  timeoutMs?: number;
  /** Aborting it rejects the call with `CANCELED` and cancels the task at the gateway. */
  signal?: AbortSignal;
  /** Called with each `task.progress` the agent reports while the call is in flight. */
  onProgress?: ProgressListener;
  /**
   * A repeated key returns the first call's output once it completed (kept for an hour), fails with a
   * retryable `CONFLICT` while the first is in flight, and runs again after a failure.
   */
  idempotencyKey?: string;
  /**
   * A delegation token (see {@link GatewayClient.delegate}): the call is made on behalf of the principal
   * that minted it. This connection must be registered as the agent the token was issued for.
   */
  delegation?: string;
  /**
   * From inside an agent's handler: the task this call is made for (`ctx.taskId`), so the gateway can
   * follow the chain of agents (loops are refused). Without it, the one task this connection holds.
   */
  parentTaskId?: string;
  /**
   * An approval given for this very call (same agent, task and data) after an earlier call timed out
   * waiting for it (`TIMEOUT` with `details.approvalId`): the call goes through once.
   */
  approvalId?: string;
  /** W3C trace context to continue (e.g. `ctx.traceparent` inside an agent's handler): the call joins that trace. */
  traceparent?: string;
  /**
   * Send the call again, within its deadline, when it is known that no agent received it: a retryable
   * error marked `dispatched: false` (the agent's instances all busy or reconnecting, a rate limit, a
   * replica without Redis), the client not connected, or a replica draining (1001) before the answer.
   * Never after an agent may have started it, so the call still runs at most once. Each retry is
   * reported as a `'call.retry'` event. Default true; `false` rejects with the first error.
   */
  transparentRetry?: boolean;
}

/** Options of {@link GatewayClient.delegate}. */
export interface DelegateOptions {
  /** Lifetime in seconds; default 300, at most 3600. */
  ttlSeconds?: number;
  /** How many agents deep the chain may go; default 1, at most 5. */
  maxDepth?: number;
  /** A token this connection's agent was given, to pass a narrower one on. */
  parent?: string;
  /**
   * The principal the agent connects as: only its connections may use the token. Default: the
   * principals of the agent's live instances (the agent must then be registered).
   */
  principal?: string;
}

/** Options of {@link GatewayClient.submit}. */
export interface SubmitOptions {
  /** The task's deadline, in milliseconds. Default 30 000 (the protocol's default). */
  timeoutMs?: number;
  /** A repeated key (per tenant) returns the first task instead of creating another. */
  idempotencyKey?: string;
  /** Retries of retryable failures: attempts in all and the first backoff (default: the agent's, else the cluster's). */
  retry?: { attempts: number; backoffMs?: number };
  /** How long to wait for a human if the agent escalates, and what then. */
  escalation?: { timeoutMs: number; onTimeout?: 'fail' | 'continue' };
  signal?: AbortSignal;
}

/** Options of {@link GatewayClient.waitForTask}. */
export interface WaitOptions {
  /** Called with each `task.progress` of the task (replayed ones included). */
  onProgress?: (progress: unknown) => void;
  /** Called with each `task.status` of the task, the final one included. */
  onStatus?: (event: TaskStatusEvent) => void;
  /** Stops waiting (the task goes on). */
  signal?: AbortSignal;
}

/** How an async task or workflow ended, as {@link GatewayClient.waitForTask} resolves. */
export interface TaskOutcome {
  taskId: string;
  status: 'completed' | 'failed' | 'canceled' | 'rejected';
  output?: unknown;
  error?: WireError;
}

/** The result of {@link GatewayClient.ping}. */
export interface PingResult {
  pong: true;
  /** The gateway's clock, epoch milliseconds. */
  time: number;
  /** Round trip measured by this client, in milliseconds. */
  rttMs: number;
}

/**
 * How much longer than the gateway's deadline a sync `call()` waits locally. The gateway holds the real
 * deadline and answers `TIMEOUT` itself; the margin covers the trip back.
 */
export const CALL_GRACE_MS = 5_000;

/** How long `close()` waits for the gateway to acknowledge the close frame before dropping the socket. */
const CLOSE_HANDSHAKE_MS = 1_000;
/** The largest upgrade-refusal body read for its error message. */
const MAX_REFUSAL_BODY = 16 * 1024;

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
  private readonly options: ResolvedClientOptions;
  private readonly pending = new PendingRequests();
  private readonly agents = new Map<string, AgentHandle>();
  private readonly transport: AgentTransport;
  private currentState: ClientState = 'idle';
  private currentSession: HelloResult | undefined;
  /** The open socket, from its `open` event (handshake included) until its `close` event. */
  private socket: WebSocket | undefined;
  /** A socket still in its opening handshake, so `close()` can abort it. */
  private opening: WebSocket | undefined;
  /** Whether `socket` finished its handshake and `'connected'` was emitted for it. */
  private established = false;
  private lastClose: { code: number; reason: string } | undefined;
  private livenessTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private starting: Promise<this> | undefined;
  private closing: Promise<void> | undefined;
  private finished = false;
  /** {@link GatewayClient.waitForTask}s in progress, by task id. */
  private readonly taskWaits = new TaskWaits();
  /** Calls waiting to be sent again once the client is connected (or closed for good). */
  private readonly reconnectWaits = new Set<() => void>();
  /** When the current connection was established (for telling a stable connection from a flapping one). */
  private connectedAt = 0;
  /** The backoff step at which the last reconnection succeeded. */
  private lastReconnectStep = -1;

  constructor(options: GatewayClientOptions) {
    super();
    this.options = resolveClientOptions(options);
    this.transport = {
      request: (action, params) => this.request(action, params),
      sendReply: (frame) => this.sendReply(frame),
      reportError: (error) => this.reportError(error),
    };
  }

  /** Where the client is in its life. */
  get state(): ClientState {
    return this.currentState;
  }

  /** The `hello` result of the current connection; undefined before the first, or when `hello` is off. */
  get session(): HelloResult | undefined {
    return this.currentSession;
  }

  /**
   * Opens the connection and sends `hello`. Resolves once connected; rejects with a {@link GatewayError} if
   * the first connection fails (`UNAUTHENTICATED` / `FORBIDDEN` when the gateway refuses the credentials,
   * `UNAVAILABLE` when it cannot be reached). The first connection is not retried. Idempotent.
   */
  start(): Promise<this> {
    this.starting ??= this.establish(false).then(
      () => this,
      (error: unknown) => {
        this.finish('the first connection failed');
        throw error;
      },
    );
    return this.starting;
  }

  /**
   * Closes the connection for good: stops reconnecting, rejects pending requests with `UNAVAILABLE`
   * (not retryable), aborts running agent tasks. Resolves once the socket is closed. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
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
    return this.send(action, params, options) as Promise<TResult>;
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
    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_LIMITS.coordinatorTimeoutMs);
    for (let attempt = 1; ; attempt++) {
      try {
        // Each attempt gets what is left of the call's deadline.
        return await this.callOnce<TOutput>(agent, task, data, options, Math.max(1, deadline - Date.now()));
      } catch (error) {
        const delayMs = options.transparentRetry === false ? undefined : retryDelay(error, attempt, deadline);
        if (delayMs === undefined) throw error;
        this.safeEmit('call.retry', { agent, task, attempt: attempt + 1, delayMs, error: error as GatewayError });
        await this.untilRetry(delayMs, deadline, options.signal);
        // Still reconnecting at the deadline, or back too late to be worth it: the call ends with
        // what stopped it, never with a last attempt an agent could start and not finish in time.
        if (deadline - Date.now() < CALL_RETRY_MIN_LEFT_MS) throw error;
        // A call refused while it waited for an approval (its replica shut down) waits for that same
        // approval where it goes next, rather than asking the approvers again.
        const approvalId = ((error as GatewayError).details as { approvalId?: unknown } | undefined)?.approvalId;
        if (typeof approvalId === 'string') options = { ...options, approvalId };
      }
    }
  }

  /**
   * Waits `delayMs`, then, if the client is reconnecting, until it is connected again (at most until
   * `deadline`). Rejects with `CANCELED` when `signal` aborts.
   */
  private untilRetry(delayMs: number, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (error?: GatewayError): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.reconnectWaits.delete(onConnected);
        if (error) reject(error);
        else resolve();
      };
      const onAbort = (): void =>
        done(new GatewayError('CANCELED', "'coordinator' was aborted", { retryable: false, cause: signal?.reason }));
      const onConnected = (): void => done();
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      timer = setTimeout(() => {
        if (this.currentState !== 'connecting' && this.currentState !== 'reconnecting') return done();
        this.reconnectWaits.add(onConnected);
        timer = setTimeout(() => done(), clampTimer(Math.max(0, deadline - Date.now())));
      }, clampTimer(delayMs));
    });
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
    const result = parseResult(
      CoordinatorResultSchema,
      await this.send('coordinator', params, {
        timeoutMs: timeoutMs + CALL_GRACE_MS,
        signal: options.signal,
        onProgress: options.onProgress,
        // Before any progress the task id is unknown: cancel by the coordinator request's id instead.
        onAbort: (taskId, requestId) => {
          const target = taskId !== undefined ? { taskId } : { requestId };
          this.send('task.cancel', target, {}).catch(() => undefined);
        },
      }).catch((error: unknown) => {
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
    const result = (await this.send('coordinator', params, { signal: options.signal })) as {
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
    options: { idempotencyKey?: string; signal?: AbortSignal } = {},
  ): Promise<{ taskId: string; status: TaskState }> {
    const params: Record<string, unknown> = { workflow, input: input ?? null };
    if (options.idempotencyKey !== undefined) params.idempotencyKey = options.idempotencyKey;
    return (await this.send('workflow.start', params, { signal: options.signal })) as {
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
    return new Promise<TaskOutcome>((resolve, reject) => {
      let cursor = '0-0';
      const seen = (eventCursor: string | undefined): boolean => {
        if (eventCursor === undefined) return false;
        if (!cursorAfter(eventCursor, cursor)) return true;
        cursor = eventCursor;
        return false;
      };
      const onStatus = (event: TaskStatusEvent): void => {
        if (seen(event.cursor)) return;
        options.onStatus?.(event);
        if (!TERMINAL_STATES.has(event.status)) return;
        const outcome: TaskOutcome = { taskId, status: event.status as TaskOutcome['status'] };
        if (event.output !== undefined) outcome.output = event.output;
        if (event.error !== undefined) outcome.error = event.error;
        done();
        resolve(outcome);
      };
      const onProgress = (event: TaskProgressEvent): void => {
        if (event.id !== undefined || seen(event.cursor)) return;
        options.onProgress?.(event.progress);
      };
      const subscribe = (): void => {
        this.taskSubscribe(taskId, { after: cursor }).catch((error: unknown) => {
          if (error instanceof GatewayError && error.code === 'NOT_FOUND') {
            done();
            reject(error);
          }
          // Not connected now: the next 'connected' subscribes again.
        });
      };
      const onAbort = (): void => {
        done();
        reject(new GatewayError('CANCELED', 'stopped waiting for the task', { retryable: false }));
      };
      let remove = (): void => undefined;
      const done = (): void => {
        remove();
        options.signal?.removeEventListener('abort', onAbort);
      };
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      remove = this.taskWaits.add(taskId, { onStatus, onProgress, onConnected: subscribe });
      subscribe();
    });
  }

  /** Answers a task waiting for a human (`task.respond`): the answer becomes its output. */
  async taskRespond(taskId: string, output: unknown, options: RequestOptions = {}): Promise<void> {
    await this.send('task.respond', { taskId, output }, options);
  }

  /** Runs a failed or canceled async task again from its first attempt (`task.retry`). */
  async taskRetry(taskId: string, options: RequestOptions = {}): Promise<void> {
    await this.send('task.retry', { taskId }, options);
  }

  /** The tenant's async tasks in a status, newest change first (`task.list`; default `failed`). */
  async taskList(
    status: TaskState = 'failed',
    options: RequestOptions & { limit?: number } = {},
  ): Promise<TaskRecord[]> {
    const params: Record<string, unknown> = { status };
    if (options.limit !== undefined) params.limit = options.limit;
    return (await this.send('task.list', params, options)) as TaskRecord[];
  }

  /** The tenant's approvals (`approval.list`): pending ones unless told otherwise. Needs `approval:read`. */
  async approvalList(
    status: ApprovalRecord['status'] | 'all' = 'pending',
    options: RequestOptions & { limit?: number } = {},
  ): Promise<ApprovalRecord[]> {
    const params: Record<string, unknown> = { status };
    if (options.limit !== undefined) params.limit = options.limit;
    return parseResult(ApprovalListResultSchema, await this.send('approval.list', params, options), 'approval.list');
  }

  /** One approval (`approval.get`): for principals with `approval:read`, and for the caller whose message it holds. */
  async approvalGet(approvalId: string, options: RequestOptions = {}): Promise<ApprovalRecord> {
    return parseResult(ApprovalRecordSchema, await this.send('approval.get', { approvalId }, options), 'approval.get');
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
    return parseResult(ApprovalRecordSchema, await this.send('approval.decide', params, options), 'approval.decide');
  }

  /** The agents the gateway knows (`agents.list`). */
  async agentsList(options: RequestOptions = {}): Promise<AgentInfo[]> {
    return parseResult(AgentsListResultSchema, await this.send('agents.list', {}, options), 'agents.list');
  }

  /** Checks the connection end to end (`ping`) and measures the round trip. */
  async ping(options: RequestOptions = {}): Promise<PingResult> {
    const sentAt = performance.now();
    const result = parseResult(PingResultSchema, await this.send('ping', {}, options), 'ping');
    return { ...result, rttMs: performance.now() - sentAt };
  }

  /** The record of a task (`task.get`). Rejects with `NOT_FOUND` for an unknown id. */
  async taskGet(taskId: string, options: RequestOptions = {}): Promise<TaskRecord> {
    return parseResult(TaskRecordSchema, await this.send('task.get', { taskId }, options), 'task.get');
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
    return parseResult(DelegateResultSchema, await this.send('delegate', params, {}), 'delegate');
  }

  /** Cancels a task that has not ended (`task.cancel`). */
  async taskCancel(taskId: string, options: RequestOptions = {}): Promise<{ taskId: string; status: 'canceled' }> {
    return parseResult(TaskCancelResultSchema, await this.send('task.cancel', { taskId }, options), 'task.cancel');
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
    return (await this.send('task.subscribe', params, options)) as { taskId: string; status: TaskState };
  }

  /**
   * An agent served by this client. Add handlers, then `await handle.register()`; see {@link AgentHandle}.
   * Throws a `TypeError` for a name the protocol does not allow, and an `Error` if this client already
   * has an agent of that name.
   */
  agent(name: string, options: AgentOptions = {}): AgentHandle {
    if (!AgentNameSchema.safeParse(name).success) {
      throw new TypeError(`agent name '${name}': expected ^[a-z0-9][a-z0-9._-]{0,62}$`);
    }
    if (this.agents.has(name)) throw new Error(`this client already has an agent named '${name}'`);
    const handle = new AgentHandle(name, options, this.transport);
    this.agents.set(name, handle);
    return handle;
  }

  // ---- requests ---------------------------------------------------------------------------------------

  private send(
    action: string,
    params: Record<string, unknown>,
    options: RequestOptions & {
      onProgress?: ProgressListener | undefined;
      onAbort?: ((taskId: string | undefined, requestId: number | string) => void) | undefined;
    },
  ): Promise<unknown> {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(this.notConnectedError(action));
    }
    if (options.signal?.aborted) {
      return Promise.reject(
        new GatewayError('CANCELED', `'${action}' was aborted`, { retryable: false, cause: options.signal.reason }),
      );
    }
    const id = this.pending.nextId();
    let text: string;
    try {
      // The envelope's own fields win over same-named params.
      text = this.serialise({ ...params, action, id });
    } catch (error) {
      return Promise.reject(error);
    }
    const settled = this.pending.track(id, action, {
      timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs,
      signal: options.signal,
      onProgress: options.onProgress,
      onAbort: options.onAbort,
    });
    socket.send(text, (error) => {
      if (error) {
        this.pending.reject(
          id,
          new GatewayError('UNAVAILABLE', `could not send '${action}': ${error.message}`, { retryable: true }),
        );
      }
    });
    return settled;
  }

  private sendReply(frame: Record<string, unknown>): boolean {
    const text = this.serialise(frame);
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    // A reply lost in a dying socket is the same as one not sent: the gateway ends the task by its deadline.
    socket.send(text, () => undefined);
    return true;
  }

  /** JSON text of a frame; throws `BAD_REQUEST` / `PAYLOAD_TOO_LARGE` rather than send what the gateway refuses. */
  private serialise(frame: Record<string, unknown>): string {
    let text: string;
    try {
      text = JSON.stringify(frame);
    } catch (error) {
      throw new GatewayError('BAD_REQUEST', `'${String(frame.action)}' cannot be sent: it is not JSON-serialisable`, {
        cause: error,
      });
    }
    // The gateway closes the socket (1009) on a frame over its limit; refuse this one frame instead.
    const limit = this.currentSession?.limits.maxFrameBytes;
    if (limit !== undefined && Buffer.byteLength(text) > limit) {
      throw new GatewayError(
        'PAYLOAD_TOO_LARGE',
        `'${String(frame.action)}' is larger than the gateway's ${limit}-byte frame limit`,
        {
          details: { maxFrameBytes: limit },
        },
      );
    }
    return text;
  }

  private notConnectedError(action: string): GatewayError {
    if (this.currentState === 'closed') {
      return new GatewayError('UNAVAILABLE', `cannot send '${action}': the client is closed`, { retryable: false });
    }
    if (this.currentState === 'idle') {
      return new GatewayError('UNAVAILABLE', `cannot send '${action}': the client was not started (call start())`, {
        retryable: false,
      });
    }
    return new GatewayError('UNAVAILABLE', `cannot send '${action}': not connected to the gateway`, {
      retryable: true,
      dispatched: false,
    });
  }

  // ---- inbound frames ---------------------------------------------------------------------------------

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    this.armLiveness();
    const text = rawToString(data);
    if (isBinary) {
      this.reportError(new UnexpectedFrameError('the gateway sent a binary frame', text));
      return;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch (error) {
      this.reportError(new UnexpectedFrameError('the gateway sent a frame that is not JSON', text, { cause: error }));
      return;
    }
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      this.reportError(new UnexpectedFrameError('the gateway sent a frame that is not a JSON object', text));
    } else if ('ok' in frame) {
      this.onResponse(frame, text);
    } else if ('event' in frame) {
      this.onEvent(frame as Record<string, unknown>, text);
    } else {
      this.reportError(
        new UnexpectedFrameError('the gateway sent a frame that is neither a response nor an event', text),
      );
    }
  }

  private onResponse(frame: object, text: string): void {
    const parsed = ResponseSchema.safeParse(frame);
    const id = (frame as { id?: unknown }).id;
    if (!parsed.success) {
      const error = new UnexpectedFrameError('the gateway sent a malformed response', text, { cause: parsed.error });
      // The request it answers ends now rather than at its deadline.
      if (
        typeof id !== 'number' ||
        !this.pending.reject(id, new GatewayError('INTERNAL', error.message, { retryable: false }))
      ) {
        this.reportError(error);
      }
      return;
    }
    const response = parsed.data;
    if (typeof response.id === 'number') {
      const settledNow = response.ok
        ? this.pending.resolve(response.id, response.result)
        : this.pending.reject(response.id, GatewayError.fromWire(response.error));
      // A response to a request that already timed out or was aborted is expected, and dropped.
      if (settledNow || this.pending.isSettled(response.id)) return;
    }
    // Not ours: e.g. the gateway refusing an agent reply, which carries no id.
    if (!response.ok) this.reportError(GatewayError.fromWire(response.error));
    else this.reportError(new UnexpectedFrameError('the gateway sent a response to no request of this client', text));
  }

  private onEvent(frame: Record<string, unknown>, text: string): void {
    switch (frame.event) {
      case 'task': {
        const parsed = TaskEventSchema.safeParse(frame);
        if (parsed.success) {
          this.dispatchTask(parsed.data);
        } else {
          this.reportError(
            new UnexpectedFrameError('the gateway sent a malformed task event', text, { cause: parsed.error }),
          );
          // Answer what can be answered, so the task fails now rather than at its deadline.
          if (typeof frame.taskId === 'string' && frame.taskId.length > 0) {
            this.trySendReply({
              action: 'task.error',
              taskId: frame.taskId,
              error: { code: 'BAD_REQUEST', message: 'the agent received a malformed task event', retryable: false },
            });
          }
        }
        return;
      }
      case 'task.cancel': {
        const parsed = TaskCancelEventSchema.safeParse(frame);
        if (!parsed.success) {
          this.reportError(new UnexpectedFrameError('the gateway sent a malformed task.cancel event', text));
          return;
        }
        for (const handle of this.agents.values()) if (handle.cancel(parsed.data.taskId)) return;
        return;
      }
      case 'task.progress': {
        if (!TaskProgressEventSchema.safeParse(frame).success) {
          this.reportError(new UnexpectedFrameError('the gateway sent a malformed task.progress event', text));
          return;
        }
        const event: TaskProgressEvent = { taskId: frame.taskId as string, progress: frame.progress };
        if (typeof frame.id === 'string' || typeof frame.id === 'number') event.id = frame.id;
        if (typeof frame.cursor === 'string') event.cursor = frame.cursor;
        if (typeof frame.id === 'number') {
          const listener = this.pending.progressListener(frame.id, event.taskId);
          if (listener) this.guard(() => listener(event.progress, { taskId: event.taskId }));
        }
        for (const wait of this.taskWaits.of(event.taskId)) this.guard(() => wait.onProgress(event));
        this.safeEmit('task.progress', event);
        return;
      }
      case 'task.status': {
        const parsed = TaskStatusEventSchema.safeParse(frame);
        if (!parsed.success) {
          this.reportError(new UnexpectedFrameError('the gateway sent a malformed task.status event', text));
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
        for (const wait of this.taskWaits.of(taskId)) this.guard(() => wait.onStatus(event));
        this.safeEmit('task.status', event);
        return;
      }
      case 'approval.required':
      case 'approval.requested':
      case 'approval.updated':
        this.safeEmit(frame.event, frame as unknown as ApprovalEvent);
        return;
      default:
      // Events this version does not know are a newer gateway's additions: ignored, not errors.
    }
  }

  private dispatchTask(event: TaskEvent): void {
    // Every agent is a candidate, registered or not yet: ws emits the frames of one TCP read back to back,
    // so a task can arrive before the continuation of register() has marked the agent registered.
    const all = [...this.agents.values()];
    // The gateway names the agent asked; one connection may serve several with the same task names.
    const named = event.agent === undefined ? [] : all.filter((handle) => handle.name === event.agent);
    const candidates = named.length > 0 ? named : all;
    let best: AgentHandle | undefined;
    let bestScore = 0;
    for (const handle of candidates) {
      const score = handle.matches(event.task);
      if (score > bestScore) {
        best = handle;
        bestScore = score;
      }
    }
    // With a single agent, it answers an unknown task itself, in a message that names it.
    best ??= candidates.length === 1 ? candidates[0] : undefined;
    if (best) {
      best.run(event);
      return;
    }
    const names = all.map((handle) => handle.name).join(', ');
    this.trySendReply({
      action: 'task.error',
      taskId: event.taskId,
      error: {
        code: 'NOT_FOUND',
        message: `no agent on this connection${names ? ` (${names})` : ''} has a handler for task '${event.task}'`,
        retryable: false,
      },
    });
  }

  private trySendReply(frame: Record<string, unknown>): void {
    try {
      this.sendReply(frame);
    } catch (error) {
      this.reportError(error);
    }
  }

  // ---- connection lifecycle ---------------------------------------------------------------------------

  /** Opens a socket and runs the handshake (hello, then re-registration); resolves once `'connected'` is emitted. */
  private async establish(reconnecting: boolean): Promise<void> {
    if (this.closing) throw this.clientClosedError();
    this.currentState = reconnecting ? 'reconnecting' : 'connecting';
    const socket = await this.openSocket();
    if (this.closing) {
      socket.terminate();
      throw this.clientClosedError();
    }
    this.attach(socket);
    try {
      let session: HelloResult | undefined;
      if (this.options.hello) {
        session = parseResult(
          HelloResultSchema,
          await this.send(
            'hello',
            {
              protocol: PROTOCOL_VERSION,
              client: { name: this.options.clientName, version: SDK_VERSION },
            },
            {},
          ),
          'hello',
        );
        this.currentSession = session;
      }
      if (reconnecting) await this.reregisterAgents();
      if (this.socket !== socket || socket.readyState !== WebSocket.OPEN) {
        throw new GatewayError('UNAVAILABLE', 'the connection closed during its handshake', { retryable: true });
      }
      this.established = true;
      this.currentState = 'connected';
      this.connectedAt = Date.now();
      this.armLiveness();
      this.releaseReconnectWaits();
      for (const wait of this.taskWaits.all()) this.guard(() => wait.onConnected());
      this.safeEmit('connected', { session, reconnected: reconnecting });
    } catch (error) {
      socket.terminate();
      if (this.closing) throw this.clientClosedError();
      if (this.lastClose?.code === CloseCode.POLICY) {
        throw new GatewayError('UNAUTHENTICATED', `the gateway closed the connection (1008 ${this.lastClose.reason})`, {
          retryable: false,
          cause: error,
        });
      }
      throw error;
    }
  }

  /** A socket that has opened, or a rejection: `UNAUTHENTICATED` / `FORBIDDEN` / ... from an HTTP refusal, else `UNAVAILABLE`. */
  private openSocket(): Promise<WebSocket> {
    return new Promise<WebSocket>((resolve, reject) => {
      const headers: Record<string, string> = {};
      if (this.options.token !== undefined) headers.Authorization = `Bearer ${this.options.token}`;
      if (this.options.apiKey !== undefined) headers['X-API-Key'] = this.options.apiKey;
      const socket = new WebSocket(this.options.url, { headers, handshakeTimeout: this.options.connectTimeoutMs });
      this.opening = socket;
      let refusal: GatewayError | undefined;
      let failure: Error | undefined;

      socket.on('unexpected-response', (_request, response) => {
        readRefusal(response).then((error) => {
          refusal = error;
          socket.terminate();
        });
      });
      // ws emits 'error' without a listener as an uncaught exception; every socket keeps this one for life.
      socket.on('error', (error) => {
        if (socket === this.socket) this.reportError(error);
        else failure = error;
      });
      socket.once('open', () => {
        this.opening = undefined;
        socket.off('close', onCloseBeforeOpen);
        resolve(socket);
      });
      const onCloseBeforeOpen = (): void => {
        this.opening = undefined;
        if (refusal) {
          reject(refusal);
          return;
        }
        const why = failure?.message ?? 'the connection closed during the opening handshake';
        reject(
          new GatewayError('UNAVAILABLE', `cannot connect to ${redactUrl(this.options.url)}: ${why}`, {
            retryable: true,
            cause: failure,
          }),
        );
      };
      socket.once('close', onCloseBeforeOpen);
    });
  }

  private attach(socket: WebSocket): void {
    this.socket = socket;
    this.established = false;
    this.lastClose = undefined;
    socket.on('message', (data, isBinary) => {
      if (socket === this.socket) this.onMessage(data, isBinary);
    });
    // ws answers the gateway's pings by itself; they only prove the connection is alive.
    socket.on('ping', () => {
      if (socket === this.socket) this.armLiveness();
    });
    socket.once('close', (code, reason) => this.onSocketClose(socket, code, reason.toString()));
  }

  private onSocketClose(socket: WebSocket, code: number, reason: string): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    this.lastClose = { code, reason };
    this.disarmLiveness();
    const wasEstablished = this.established;
    this.established = false;
    const byClient = this.closing !== undefined;
    this.pending.rejectAll(
      (action) =>
        new GatewayError(
          'UNAVAILABLE',
          byClient
            ? `the client closed before '${action}' was answered`
            : `the connection closed (${code}) before '${action}' was answered`,
          { retryable: !byClient, details: { closeCode: code, reason } },
        ),
    );
    const lost = new GatewayError('UNAVAILABLE', 'the connection to the gateway was lost', { retryable: true });
    for (const handle of this.agents.values()) handle.detach(lost);
    // A connection that dies during its handshake is establish()'s to report.
    if (!wasEstablished) return;

    const willReconnect = !byClient && this.options.reconnect !== false && shouldReconnect(code);
    this.safeEmit('disconnected', { code, reason, willReconnect });
    if (willReconnect) {
      this.reconnect(code).catch((error: unknown) => this.reportError(error));
    } else if (!byClient) {
      this.finish(
        this.options.reconnect === false
          ? `the connection closed (${code}) and reconnection is off`
          : `the gateway closed the connection with ${code}`,
      );
    }
  }

  /**
   * Reconnects with exponential backoff and full jitter. It backs off harder when the gateway says it
   * is overloaded: after 1013 (too slow, or too many connections) it starts three steps up the backoff
   * with at least half the step's cap; after a refused upgrade that names a `retryAfterMs` (503 at a
   * replica's connection cap, 429 during a lockout) it waits that long, plus the usual jitter.
   */
  private async reconnect(closeCode?: number): Promise<void> {
    const policy = this.options.reconnect;
    if (policy === false) return;
    this.currentState = 'reconnecting';
    let lastError: unknown;
    // A connection that dropped soon after it was made (a gateway that accepts and then fails, a
    // proxy cutting it) does not start the backoff over: the next wait is a step longer than the last.
    const flapping = Date.now() - this.connectedAt < STABLE_CONNECTION_MS;
    const carried = flapping ? this.lastReconnectStep + 1 : 0;
    const overload = closeCode === CloseCode.TRY_AGAIN_LATER ? OVERLOAD_BACKOFF_STEPS : 0;
    const start = Math.max(carried, overload);
    for (let attempt = 0; attempt < policy.maxAttempts; attempt++) {
      const step = attempt + start;
      const retryAfterMs = lastError instanceof GatewayError ? lastError.retryAfterMs : undefined;
      const delayMs =
        retryAfterMs !== undefined
          ? retryAfterMs + backoffDelay(step, policy)
          : overload > 0
            ? Math.floor(backoffCap(step, policy) / 2) + Math.floor(backoffDelay(step, policy) / 2)
            : backoffDelay(step, policy);
      this.safeEmit('reconnecting', { attempt: attempt + 1, delayMs, lastError });
      await this.sleep(delayMs);
      if (this.closing) return;
      try {
        await this.establish(true);
        this.lastReconnectStep = step;
        return;
      } catch (error) {
        if (this.closing) return;
        lastError = error;
        if (error instanceof GatewayError && (error.code === 'UNAUTHENTICATED' || error.code === 'FORBIDDEN')) {
          this.reportError(error);
          this.finish(`the gateway refused the credentials (${error.code})`);
          return;
        }
      }
    }
    this.reportError(
      new GatewayError('UNAVAILABLE', `gave up reconnecting after ${policy.maxAttempts} attempts`, {
        retryable: true,
        cause: lastError,
      }),
    );
    this.finish(`gave up reconnecting after ${policy.maxAttempts} attempts`);
  }

  /** Registers again every agent that had registered; only refusals a retry can fix fail the reconnection. */
  private async reregisterAgents(): Promise<void> {
    const handles = [...this.agents.values()].filter((handle) => handle.wantsRegistration);
    const outcomes = await Promise.allSettled(handles.map((handle) => handle.reregister()));
    let retryable: unknown;
    outcomes.forEach((outcome, index) => {
      if (outcome.status === 'fulfilled') return;
      const error = outcome.reason;
      if (error instanceof GatewayError && error.retryable) {
        retryable ??= error;
        return;
      }
      this.reportError(
        new GatewayError(
          error instanceof GatewayError ? error.code : 'INTERNAL',
          `agent '${handles[index]?.name}' could not be registered again: ${error instanceof Error ? error.message : String(error)}`,
          { retryable: false, cause: error },
        ),
      );
    });
    if (retryable !== undefined) throw retryable;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, clampTimer(ms));
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /**
   * The gateway pings every `heartbeatMs`; a connection that has shown no sign of life (ping or frame) for
   * 2.5 of them is dead without a close (a vanished NAT entry, a frozen replica), and is dropped to reconnect.
   */
  private armLiveness(): void {
    const heartbeatMs = this.currentSession?.limits.heartbeatMs;
    const socket = this.socket;
    if (!this.established || !socket || heartbeatMs === undefined || heartbeatMs <= 0) return;
    if (this.livenessTimer !== undefined) {
      this.livenessTimer.refresh();
      return;
    }
    // Cleared when this socket closes, so the closure never outlives it.
    this.livenessTimer = setTimeout(() => socket.terminate(), clampTimer(heartbeatMs * 2.5));
  }

  private disarmLiveness(): void {
    if (this.livenessTimer !== undefined) clearTimeout(this.livenessTimer);
    this.livenessTimer = undefined;
  }

  private async shutdown(): Promise<void> {
    this.wake?.();
    this.opening?.terminate();
    const socket = this.socket;
    if (socket) {
      await new Promise<void>((resolve) => {
        const fallback = setTimeout(() => socket.terminate(), CLOSE_HANDSHAKE_MS);
        socket.once('close', () => {
          clearTimeout(fallback);
          resolve();
        });
        socket.close(CloseCode.NORMAL, 'client closing');
      });
    }
    // Settles whatever the socket's close did not (e.g. a request sent while no socket was open).
    this.pending.rejectAll(
      (action) =>
        new GatewayError('UNAVAILABLE', `the client closed before '${action}' was answered`, { retryable: false }),
    );
    this.finish('closed by the client');
  }

  /** The client will not connect again: emits `'closed'` once. */
  private finish(reason: string): void {
    this.disarmLiveness();
    this.currentState = 'closed';
    if (this.finished) return;
    this.finished = true;
    this.releaseReconnectWaits();
    this.safeEmit('closed', { code: this.lastClose?.code, reason });
  }

  /** Lets the calls waiting for a connection go on: it is back, or will never be. */
  private releaseReconnectWaits(): void {
    const waits = [...this.reconnectWaits];
    this.reconnectWaits.clear();
    for (const release of waits) this.guard(release);
  }

  private clientClosedError(): GatewayError {
    return new GatewayError('UNAVAILABLE', 'the client was closed', { retryable: false });
  }

  // ---- events -----------------------------------------------------------------------------------------

  /** Emits without letting a listener's exception escape into the socket's event loop. */
  private safeEmit<K extends keyof GatewayClientEvents>(event: K, ...args: GatewayClientEvents[K]): void {
    this.guard(() => (this.emit as (name: K, ...rest: GatewayClientEvents[K]) => boolean)(event, ...args));
  }

  private guard(fn: () => unknown): void {
    try {
      fn();
    } catch (error) {
      this.reportError(error);
    }
  }

  /** Emits `'error'` if anyone listens; a bare EventEmitter would throw instead. Never throws. */
  private reportError(error: unknown): void {
    if (this.listenerCount('error') === 0) return;
    try {
      this.emit('error', error instanceof Error ? error : new Error(String(error)));
    } catch {
      // An 'error' listener that throws has nowhere left to report to.
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

/** Whether to reconnect after the gateway or the network closed an established connection with `code`. */
function shouldReconnect(code: number): boolean {
  // Beyond the codes the protocol names as transient (RECONNECTABLE_CLOSE_CODES: 1001, 1006, 1011, 1012,
  // 1013), any other close the client did not ask for (1000 or 1005 from a replica shutting down, 1009
  // after an oversized frame) is also cured by a fresh connection. Only 1008 means the credentials are
  // no longer good, and reconnecting with them would be refused again.
  return code !== CloseCode.POLICY;
}

/** Backoff of transparent call retries: the cap doubles from 50 ms to 1 s, with full jitter. */
const CALL_RETRY_BACKOFF = { initialDelayMs: 50, maxDelayMs: 1_000 };
/** A retry is not worth making with less than this left of the call's deadline. */
const CALL_RETRY_MIN_LEFT_MS = 20;

/**
 * How long to wait before sending a call again after `error` (attempt `attempt`, 1-based, failed), or
 * undefined when it must not be sent again: only a retryable error known not to have reached an agent
 * (`dispatched: false`) is retried, and only while the deadline leaves room.
 */
export function retryDelay(
  error: unknown,
  attempt: number,
  deadline: number,
  random: () => number = Math.random,
): number | undefined {
  if (!(error instanceof GatewayError) || !error.retryable || error.dispatched !== false) return undefined;
  const delayMs = Math.max(error.retryAfterMs ?? 0, backoffDelay(attempt - 1, CALL_RETRY_BACKOFF, random));
  return Date.now() + delayMs + CALL_RETRY_MIN_LEFT_MS < deadline ? delayMs : undefined;
}

/**
 * Whether an `UNAVAILABLE` raised for a request its closing connection left unanswered came from a
 * gateway replica's drain: close code 1001 with the gateway's drain reason.
 */
function isDrainClose(error: GatewayError): boolean {
  const details = error.details as { closeCode?: unknown; reason?: unknown } | undefined;
  return details?.closeCode === CloseCode.GOING_AWAY && details.reason === DRAIN_CLOSE_REASON;
}

/** A connection that lasted less than this before it dropped was flapping: the backoff goes on from where it was. */
const STABLE_CONNECTION_MS = 10_000;

/** After 1013 (overloaded), reconnection starts this many steps up the backoff. */
const OVERLOAD_BACKOFF_STEPS = 3;

/** The gateway refused the upgrade: its JSON error if it sent one, else an error for the HTTP status. */
async function readRefusal(response: IncomingMessage): Promise<GatewayError> {
  const status = response.statusCode ?? 0;
  const retryAfter = retryAfterHeaderMs(response.headers['retry-after']);
  const body = await new Promise<string>((resolve) => {
    let text = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > MAX_REFUSAL_BODY) response.destroy();
    });
    response.on('error', () => resolve(text));
    response.on('close', () => resolve(text));
    response.on('end', () => resolve(text));
  });
  try {
    const wire = WireErrorSchema.partial({ retryable: true }).safeParse(
      (JSON.parse(body) as { error?: unknown }).error,
    );
    if (wire.success) {
      const code = wire.data.code as ErrorCode;
      return new GatewayError(code, wire.data.message, {
        retryable: wire.data.retryable,
        retryAfterMs: wire.data.retryAfterMs ?? retryAfter,
        details: wire.data.details ?? { httpStatus: status },
      });
    }
  } catch {
    // Not JSON (a proxy's error page): fall back to the status and the Retry-After header.
  }
  const code: ErrorCode =
    status === 401 ? 'UNAUTHENTICATED' : status === 403 ? 'FORBIDDEN' : status === 429 ? 'RATE_LIMITED' : 'UNAVAILABLE';
  return new GatewayError(code, `the gateway refused the connection (HTTP ${status})`, {
    retryable: code === 'UNAVAILABLE' || code === 'RATE_LIMITED',
    retryAfterMs: retryAfter,
    details: { httpStatus: status },
  });
}

/** The longest `Retry-After` honoured, so a bad header cannot park a client for hours. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * A `Retry-After` header in milliseconds (delay-seconds or an HTTP date), at most five minutes;
 * undefined when absent or unreadable.
 */
export function retryAfterHeaderMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^[+-]?\d+$/.test(text) && !/^\d+$/.test(text)) return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

/** The URL without its query, which may carry `api_key` / `access_token`, and without user info. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

function rawToString(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

const TERMINAL_STATES: ReadonlySet<string> = new Set(['completed', 'failed', 'canceled', 'rejected']);

/** Whether event cursor (stream id) `a` comes after `b`. */
function cursorAfter(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}
