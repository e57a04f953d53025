import { type RegisterResult, RegisterResultSchema, type TaskEvent } from '@openclaw/protocol';
import { GatewayError } from './errors';
import { parseResult } from './result-parsing';
import { MemoryClient, type ThreadMemory, threadMemory } from './shared-state';
import { clampTimer } from './timer';

/** Options of {@link GatewayClient.agent}: what `register` tells the gateway. */
export interface AgentOptions {
  /**
   * Task names this agent advertises. Default: the names passed to {@link AgentHandle.handle} at the time
   * of `register()` (the `'*'` wildcard is not advertised).
   */
  tasks?: string[];
  /** How many tasks this instance takes at once; the gateway enforces it. Default 1 (the gateway's default). */
  concurrency?: number;
  /** Free metadata, stored with the instance in the cluster registry. */
  meta?: Record<string, unknown>;
  /**
   * Tasks whose outputs the gateway may cache (`'*'`: all), for `ttlMs`: identical calls are then
   * answered from the cache without reaching this agent (docs/state.md#result-cache).
   */
  cache?: { tasks: string[]; ttlMs: number };
}

/** Who sent a task. */
export interface TaskOrigin {
  /** The caller's principal id. */
  principal: string;
  /** The agent the caller acts as, if it is one. */
  agent?: string;
}

/** What a {@link TaskHandler} learns about the task it runs. */
export interface TaskContext {
  readonly taskId: string;
  /** The task name, e.g. `summarize`. */
  readonly task: string;
  /** The agent this task was sent to. */
  readonly agent: string;
  readonly from: TaskOrigin;
  /** When the caller stops waiting, in epoch milliseconds. `signal` aborts then. */
  readonly deadline: number;
  /** 1 for the first delivery; higher when the gateway dispatches an async task again. */
  readonly attempt: number;
  /**
   * W3C trace context of the dispatch, when the gateway traces: start the handler's own spans from it
   * (and pass it as `traceparent` on calls the handler makes), so they join the caller's trace.
   */
  readonly traceparent?: string;
  /**
   * Aborted when the caller cancels the task (reason: `GatewayError` `CANCELED`), when the deadline passes
   * (`TIMEOUT`), or when the connection to the gateway is lost (`UNAVAILABLE`). Pass it to `fetch` and the like.
   */
  readonly signal: AbortSignal;
  /** Reports intermediate progress to the caller (`task.progress`). Best effort: dropped while disconnected. */
  progress(value: unknown): void;
  /** The memory thread of the conversation, when the call named one. */
  readonly thread?: string;
  /** That thread's memory, to read and extend (`memory.read`, `memory.append`), when there is a thread. */
  readonly memory?: ThreadMemory;
}

/**
 * Runs one task: resolves with the output (sent as `task.result`) or throws (sent as `task.error`). A thrown
 * {@link GatewayError} keeps its code and `retryable`; an error with a string `code` or boolean `retryable`
 * property passes those along; otherwise only the message is sent.
 */
export type TaskHandler<TData = unknown, TOutput = unknown> = (
  data: TData,
  ctx: TaskContext,
) => TOutput | Promise<TOutput>;

/** @internal What an {@link AgentHandle} needs from the client that made it. */
export interface AgentTransport {
  request(action: string, params: Record<string, unknown>): Promise<unknown>;
  /**
   * Sends a frame that gets no response (agent replies carry no id). Returns false when there is no
   * connection; throws a {@link GatewayError} when the frame cannot be serialised or is too large.
   */
  sendReply(frame: Record<string, unknown>): boolean;
  reportError(error: unknown): void;
}

interface RunningTask {
  controller: AbortController;
  deadlineTimer: NodeJS.Timeout;
  /** Set when the connection the task came on is gone: its reply must not go out on the next one. */
  orphaned: boolean;
}

/** The wildcard task name: its handler runs tasks no other handler takes. */
const WILDCARD = '*';
/** The protocol's limit on an agent error message. */
const MAX_ERROR_MESSAGE = 4096;
/** The protocol's limit on an agent error code. */
const MAX_ERROR_CODE = 64;

/**
 * One agent this client serves: task handlers, and its registration with the gateway. Made by
 * {@link GatewayClient.agent}.
 *
 * Lifecycle: add handlers with {@link AgentHandle.handle}, then `await register()`. From then on the
 * client registers the agent again after every reconnection, with the handlers it has at that time.
 * Handlers added after `register()` run at once, but are advertised only at the next registration.
 *
 * The gateway's `task` event does not name the agent, so when one connection serves several agents a
 * task goes to the first agent (in creation order) with a handler of that exact name, else to the first
 * with a `'*'` handler.
 *
 * @example
 * const agent = client.agent('summarizer', { concurrency: 4 });
 * agent.handle('summarize', async (data: { text: string }, ctx) => {
 *   ctx.progress({ stage: 'reading' });
 *   return { summary: await summarize(data.text, { signal: ctx.signal }) };
 * });
 * await agent.register();
 */
export class AgentHandle {
  /** The agent name. */
  readonly name: string;
  private readonly options: AgentOptions;
  private readonly transport: AgentTransport;
  /** Memory, for the handlers of tasks that come with a thread. */
  private readonly memory: MemoryClient;
  private readonly handlers = new Map<string, TaskHandler>();
  private readonly running = new Map<string, RunningTask>();
  private registration: RegisterResult | undefined;
  /** Set once a `register()` succeeded: the client registers the agent again after reconnecting. */
  private wanted = false;

  /** @internal Use {@link GatewayClient.agent}. */
  constructor(name: string, options: AgentOptions, transport: AgentTransport) {
    this.name = name;
    this.options = options;
    this.transport = transport;
    this.memory = new MemoryClient(
      <T>(action: string, params: Record<string, unknown>) => transport.request(action, params) as Promise<T>,
    );
  }

  /**
   * Sets the handler of task `task` (or `'*'` for any task without its own handler). One handler per
   * task name: setting a second throws.
   */
  handle<TData = unknown, TOutput = unknown>(task: string, handler: TaskHandler<TData, TOutput>): this {
    if (task.length === 0) throw new TypeError('task: expected a non-empty task name');
    if (this.handlers.has(task)) throw new Error(`agent '${this.name}' already has a handler for task '${task}'`);
    this.handlers.set(task, handler as TaskHandler);
    return this;
  }

  /**
   * Registers this connection as an instance of the agent (`register`). Calling it again registers again,
   * e.g. to advertise handlers added since. Rejects with a {@link GatewayError} if the gateway refuses.
   */
  async register(): Promise<RegisterResult> {
    const result = parseResult(
      RegisterResultSchema,
      await this.transport.request('register', this.registerParams()),
      'register',
    );
    this.registration = result;
    this.wanted = true;
    return result;
  }

  /** Whether the agent is registered on the current connection. */
  get registered(): boolean {
    return this.registration !== undefined;
  }

  /** The instance id the gateway gave this registration, while registered. */
  get instanceId(): string | undefined {
    return this.registration?.instanceId;
  }

  /** Tasks this instance is running now. */
  get inFlight(): number {
    return this.running.size;
  }

  /** @internal Whether to register again after a reconnection. */
  get wantsRegistration(): boolean {
    return this.wanted;
  }

  /** @internal How well this agent matches a task name: 2 exact handler, 1 wildcard, 0 none. */
  matches(task: string): 0 | 1 | 2 {
    if (this.handlers.has(task)) return 2;
    return this.handlers.has(WILDCARD) ? 1 : 0;
  }

  /** @internal Runs a dispatched task and sends exactly one reply for it. */
  run(event: TaskEvent): void {
    // A second delivery of a task still running here (same connection) is answered by the first run.
    if (this.running.has(event.taskId)) return;
    const handler = this.handlers.get(event.task) ?? this.handlers.get(WILDCARD);
    if (!handler) {
      this.reply({
        action: 'task.error',
        taskId: event.taskId,
        error: {
          code: 'NOT_FOUND',
          message: `agent '${this.name}' has no handler for task '${event.task}'`,
          retryable: false,
        },
      });
      return;
    }

    const controller = new AbortController();
    const deadlineTimer = setTimeout(
      () => controller.abort(new GatewayError('TIMEOUT', `task ${event.taskId} passed its deadline`)),
      clampTimer(event.deadline - Date.now()),
    );
    const entry: RunningTask = { controller, deadlineTimer, orphaned: false };
    this.running.set(event.taskId, entry);

    const ctx: TaskContext = {
      taskId: event.taskId,
      task: event.task,
      agent: this.name,
      from: event.from,
      deadline: event.deadline,
      attempt: event.attempt,
      traceparent: event.traceparent,
      ...(typeof event.thread === 'string'
        ? { thread: event.thread, memory: threadMemory(this.memory, event.thread) }
        : {}),
      signal: controller.signal,
      progress: (value) => {
        if (entry.orphaned || this.running.get(event.taskId) !== entry) return;
        this.reply({ action: 'task.progress', taskId: event.taskId, progress: value });
      },
    };

    void this.execute(handler, event, ctx).then((reply) => {
      clearTimeout(deadlineTimer);
      if (this.running.get(event.taskId) === entry) this.running.delete(event.taskId);
      if (!entry.orphaned) this.reply(reply);
    });
  }

  /** @internal Aborts task `taskId` for `task.cancel`; false if it is not running here. */
  cancel(taskId: string): boolean {
    const entry = this.running.get(taskId);
    if (!entry) return false;
    clearTimeout(entry.deadlineTimer);
    entry.controller.abort(new GatewayError('CANCELED', `task ${taskId} was canceled by the caller`));
    return true;
  }

  /**
   * @internal The connection is gone: abort every running task and drop its eventual reply, which would
   * otherwise reach the gateway on the next connection, as an instance that never received the task.
   */
  detach(reason: GatewayError): void {
    this.registration = undefined;
    for (const entry of this.running.values()) {
      entry.orphaned = true;
      clearTimeout(entry.deadlineTimer);
      entry.controller.abort(reason);
    }
    this.running.clear();
  }

  /** @internal Registers again after a reconnection, with the same options and the current handlers. */
  async reregister(): Promise<void> {
    try {
      await this.register();
    } catch (error) {
      // A refusal that retrying cannot fix (e.g. the credentials lost the permission) stops re-registering.
      if (!(error instanceof GatewayError && error.retryable)) this.wanted = false;
      throw error;
    }
  }

  private registerParams(): Record<string, unknown> {
    const tasks = this.options.tasks ?? [...this.handlers.keys()].filter((task) => task !== WILDCARD);
    const params: Record<string, unknown> = { name: this.name };
    if (tasks.length > 0) params.tasks = tasks;
    if (this.options.concurrency !== undefined) params.concurrency = this.options.concurrency;
    if (this.options.meta !== undefined) params.meta = this.options.meta;
    if (this.options.cache !== undefined) params.cache = this.options.cache;
    return params;
  }

  private async execute(handler: TaskHandler, event: TaskEvent, ctx: TaskContext): Promise<Record<string, unknown>> {
    try {
      const output = await handler(event.data, ctx);
      return { action: 'task.result', taskId: event.taskId, output };
    } catch (error) {
      return { action: 'task.error', taskId: event.taskId, error: toAgentError(error, ctx.signal) };
    }
  }

  /** Sends a reply; one that cannot go out as it is (unserialisable, too large) becomes a `task.error`. */
  private reply(frame: Record<string, unknown>): void {
    try {
      this.transport.sendReply(frame);
    } catch (error) {
      if (frame.action === 'task.progress') {
        this.transport.reportError(error);
        return;
      }
      try {
        this.transport.sendReply({ action: 'task.error', taskId: frame.taskId, error: toAgentError(error) });
      } catch (fallbackError) {
        this.transport.reportError(fallbackError);
      }
    }
  }
}

/** The `error` of a `task.error` for whatever a handler threw. */
function toAgentError(error: unknown, signal?: AbortSignal): Record<string, unknown> {
  // A handler that gave up because its signal aborted reports why it aborted, not its own AbortError.
  const cause = signal?.aborted && signal.reason instanceof GatewayError ? signal.reason : error;
  if (cause instanceof GatewayError) {
    const wire: Record<string, unknown> = {
      code: cause.code,
      message: truncate(cause.message),
      retryable: cause.retryable,
    };
    if (cause.details !== undefined) wire.details = cause.details;
    return wire;
  }
  if (cause instanceof Error) {
    const wire: Record<string, unknown> = { message: truncate(cause.message || cause.name || 'task failed') };
    const { code, retryable, details } = cause as { code?: unknown; retryable?: unknown; details?: unknown };
    if (typeof code === 'string' && code.length > 0 && code.length <= MAX_ERROR_CODE) wire.code = code;
    if (typeof retryable === 'boolean') wire.retryable = retryable;
    if (details !== undefined) wire.details = details;
    return wire;
  }
  return { message: truncate(typeof cause === 'string' && cause.length > 0 ? cause : 'task failed') };
}

function truncate(message: string): string {
  return message.length > MAX_ERROR_MESSAGE ? message.slice(0, MAX_ERROR_MESSAGE) : message;
}
