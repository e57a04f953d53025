import { createHash, randomUUID } from 'node:crypto';
import type { TaskOrigin, TaskState, WireError } from '@openclaw/protocol';
import { GatewayError } from '@openclaw/protocol';
import type { TaskCancelRequestMessage, TaskReplyMessage } from '../bus/bus-message';
import type { ClusterBus } from '../bus/cluster-bus';
import { TIMINGS } from '../config/timings';
import { fromWireError } from '../errors/gateway-error';
import type { Approval } from '../governance/approvals';
import type { ApprovalContext, GovernanceGate } from '../governance/governance-gate';
import type { GovernedMessage } from '../governance/validator';
import { type AgentRegistry, type CallLimits, qualifiedAgent } from '../registry/agent-registry';
import type { Logger } from '../telemetry/logger';
import type { CallRecord, CallRecords } from './call-records';
import type { HttpAgentClient } from './http-agent-client';

/** Who asked for a task. */
export interface TaskCaller {
  principal: string;
  tenant: string;
  /** The agent the caller acts as, when an agent calls another. */
  agent?: string;
  /** Cluster-wide request limits of this caller (none if absent). */
  limits?: CallLimits;
  /** For a delegated call: the principal it is made for, and the chain of principals that passed it on. */
  onBehalfOf?: string;
  chain?: string[];
  /** The caller's roles (for governance rules). */
  roles?: readonly string[];
  /** The agents the call passed through, oldest first, the calling agent last (for loop detection). */
  agents?: string[];
  /** For a delegated call: the depth of its delegation. */
  delegationDepth?: number;
}

/** A sync task to route. */
export interface DispatchRequest {
  agent: string;
  task: string;
  data: unknown;
  timeoutMs: number;
  caller: TaskCaller;
  traceparent?: string;
  /** Receives the agent's `task.progress` values. */
  onProgress?: (progress: unknown) => void;
  /**
   * The caller's key for this call: a repeated key returns the first call's result while it is kept
   * (an hour), gets `CONFLICT` while the first is in flight, and runs again if the first failed.
   */
  idempotencyKey?: string;
  /** The task's id, when it has one already (an attempt of an async task). Default: a new id. */
  taskId?: string;
  /** Which attempt this is, as the agent is told. Default 1. */
  attempt?: number;
  /** A governance validator's own call (to a validator agent): not judged again. */
  skipGovernance?: boolean;
  /**
   * How a message that needs an approval waits: `wait` (a sync call, until its deadline) or `park`
   * (an async attempt: it throws `AwaitingApproval`). Without it, such a message is refused.
   */
  approval?: DispatchApproval;
  /**
   * Whether to keep the sync task record in Redis (default true). Async tasks have their own
   * ledger, written by the worker.
   */
  record?: boolean;
}

/** How a dispatched message that needs an approval waits for it. */
export interface DispatchApproval {
  mode: 'wait' | 'park';
  /** An approval given before for this very message, used instead of asking again. */
  approvalId?: string;
  /** Told when the call starts waiting for an approval. */
  onPending?: (approval: Approval) => void;
}

/** A completed call found by its idempotency key, returned instead of running it again. */
export interface ReplayedCall {
  taskId: string;
  output: unknown;
}

/** A dispatched task: its id at once, its output when it ends. */
export interface DispatchHandle {
  taskId: string;
  /** True when an idempotency key matched a completed call: `output` is that call's output. */
  replayed?: boolean;
  /** Resolves with the agent's output; rejects with a {@link GatewayError}. Always settles by the deadline. */
  output: Promise<unknown>;
}

interface Pending {
  taskId: string;
  agent: string;
  task: string;
  caller: TaskCaller;
  /** Replica holding the agent instance, for WebSocket agents. */
  holder?: string;
  instanceId?: string;
  /** Aborts an HTTP agent call. */
  abort?: AbortController;
  timer: NodeJS.Timeout;
  deadline: number;
  /** When it was dispatched (performance.now()), for the routing time. */
  startedAt: number;
  /** Not judged on its way back (a validator agent's answer). */
  skipGovernance?: boolean;
  approval?: DispatchApproval;
  onProgress?: (progress: unknown) => void;
  resolve: (output: unknown) => void;
  reject: (error: GatewayError) => void;
}

/** Options of {@link TaskDispatcher}. */
export interface TaskDispatcherOptions {
  replicaId: string;
  registry: AgentRegistry;
  bus: ClusterBus;
  store: CallRecords;
  http: HttpAgentClient;
  logger: Logger;
  /** How often to check that replicas holding our tasks are alive. Default 1000 ms. */
  watchIntervalMs?: number;
  /** Judges each request before it is routed, and each agent output before it is delivered. */
  governance?: GovernanceGate;
  /**
   * Told of every routed task as it ends: where its agent was (`local`: on this replica; `remote`:
   * on another; `http`: an HTTP agent), how long it took from dispatch, and whether it completed.
   */
  onRouted?: (route: RouteKind, seconds: number, completed: boolean) => void;
}

/** Where a routed task's agent was. */
export type RouteKind = 'local' | 'remote' | 'http';

/**
 * The origin side of sync tasks: picks an instance, sends the task to the replica holding it (one
 * publish to that replica's inbox), and holds the deadline. A task always ends exactly once: with
 * the agent's output, the agent's error, `TIMEOUT` at the deadline, `CANCELED`, or a fast
 * `AGENT_UNAVAILABLE` / `UNAVAILABLE` when the holder or the bus is lost.
 */
export class TaskDispatcher {
  private readonly replicaId: string;
  private readonly registry: AgentRegistry;
  private readonly bus: ClusterBus;
  private readonly store: CallRecords;
  private readonly http: HttpAgentClient;
  private readonly logger: Logger;
  private readonly governance: GovernanceGate | undefined;
  private readonly onRouted: TaskDispatcherOptions['onRouted'];
  private readonly pending = new Map<string, Pending>();
  /**
   * Tasks that ended while their pick was in flight, with the abort the agent needs ('deadline' or
   * 'canceled'), or undefined when it needs none. The dispatch continuation clears each entry.
   */
  private readonly endedWhileDispatching = new Map<string, 'deadline' | 'canceled' | undefined>();
  /** Tasks whose end is recorded elsewhere (async attempts): no sync record is written. */
  private readonly unrecorded = new Set<string>();
  private readonly watchTimer: NodeJS.Timeout;
  private watching = false;
  private closed = false;
  /** Aborted by {@link close}: ends the approval waits of calls still in admission. */
  private readonly closing = new AbortController();

  constructor(options: TaskDispatcherOptions) {
    this.replicaId = options.replicaId;
    this.registry = options.registry;
    this.bus = options.bus;
    this.store = options.store;
    this.http = options.http;
    this.logger = options.logger;
    this.governance = options.governance;
    this.onRouted = options.onRouted;
    this.watchTimer = setInterval(() => void this.watchHolders(), options.watchIntervalMs ?? 1000);
    this.watchTimer.unref();
  }

  /** Tasks this replica is waiting on. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Routes a sync task. Throws at once (never silently) when it cannot be routed; an error raised
   * before any agent received the task is marked `dispatched: false` (the call may be sent again).
   */
  async dispatch(request: DispatchRequest): Promise<DispatchHandle> {
    const taskId = request.taskId ?? randomUUID();
    const deadline = Date.now() + request.timeoutMs;
    let replay: ReplayedCall | undefined;
    try {
      ({ request, replay } = await this.admit(request, taskId, deadline));
    } catch (error) {
      throw asGatewayError(error).undispatched();
    }
    if (replay) return { taskId: replay.taskId, replayed: true, output: Promise.resolve(replay.output) };
    return this.route(request, taskId, deadline);
  }

  /**
   * What comes before routing: the bus check, governance (and a wait for an approval), the
   * idempotency key. @returns the request as judged, or the earlier call's result to replay.
   */
  private async admit(
    request: DispatchRequest,
    taskId: string,
    deadline: number,
  ): Promise<{ request: DispatchRequest; replay?: ReplayedCall }> {
    if (this.closed) throw new GatewayError('UNAVAILABLE', 'this replica is shutting down; retry on another');
    if (!this.bus.healthy()) {
      // A reply could not reach us: refuse now rather than time out later.
      throw new GatewayError('UNAVAILABLE', 'this replica is not connected to the cluster bus; retry shortly');
    }
    if (this.governance && !request.skipGovernance) {
      // Refused (POLICY_DENIED) before anything is written or routed; masked where a validator
      // redacted; held here (within the deadline) while it waits for an approval.
      const message = governanceMessage(request.caller, request.agent, request.task, 'request', request.data ?? null);
      if (!this.governance.passes(message)) {
        const data = await this.governance.check(message, this.approvalContext(request.approval, taskId, deadline));
        request = { ...request, data };
        if (Date.now() >= deadline) {
          throw new GatewayError('TIMEOUT', `the deadline of task '${request.task}' passed while it was judged`);
        }
      }
    }
    if (request.idempotencyKey !== undefined) {
      const replay = await this.claimIdempotencyKey(request, taskId);
      if (replay) return { request, replay };
    }
    // Checked again after the waits above: a replica that began shutting down dispatches nothing more.
    if (this.closed) throw new GatewayError('UNAVAILABLE', 'this replica is shutting down; retry on another');
    return { request };
  }

  /** Picks an instance (or HTTP agent) for an admitted task and sends it there. */
  private async route(request: DispatchRequest, taskId: string, deadline: number): Promise<DispatchHandle> {
    // Closed between the admission and here: nothing was sent (and nothing is tracked to be failed).
    if (this.closed) {
      throw new GatewayError('UNAVAILABLE', 'this replica is shutting down; retry on another', NOT_DISPATCHED);
    }
    if (request.record === false) this.unrecorded.add(taskId);
    const createdAt = Date.now();
    const record: Omit<CallRecord, 'updatedAt'> = {
      taskId,
      agent: request.agent,
      task: request.task,
      status: 'working',
      createdAt,
      principal: request.caller.principal,
      tenant: request.caller.tenant,
      origin: this.replicaId,
    };
    // The dispatch, encoded now so the pick script can publish it in the same round trip: its JSON
    // ends with the instance id, which the script fills in.
    const message = {
      type: 'task.dispatch' as const,
      taskId,
      task: request.task,
      data: request.data ?? null,
      from: originOf(request.caller),
      deadline,
      attempt: request.attempt ?? 1,
      traceparent: request.traceparent,
      instanceId: '',
    };
    const encoded = this.bus.encode(message);
    const dispatch = encoded.endsWith('"instanceId":""}')
      ? { selfReplicaId: this.replicaId, head: encoded.slice(0, -2), tail: '"}' }
      : undefined;
    // Waiting from before the pick: a reply can never find nobody expecting it. (The reply may even be
    // read before the pick's result on a busy replica: the two come on different connections.)
    const output = this.track(record, request, deadline);
    // Written first on this connection, so it is in Redis before any write that ends the task.
    if (request.record !== false) void this.store.create(record).catch(() => undefined);
    let pick: Awaited<ReturnType<AgentRegistry['pick']>>;
    try {
      // Agents are per tenant: the caller's tenant names which agent this is.
      const agent = qualifiedAgent(request.caller.tenant, request.agent);
      pick = await this.registry.pick(
        agent,
        request.task,
        taskId,
        deadline - createdAt + 1000,
        dispatch,
        request.caller.limits,
      );
    } catch (error) {
      throw this.refuse(taskId, error instanceof GatewayError ? error : asGatewayError(error));
    }
    switch (pick.kind) {
      case 'none':
        throw this.refuse(
          taskId,
          new GatewayError('AGENT_NOT_FOUND', `no agent named '${request.agent}' is registered`, NOT_DISPATCHED),
        );
      case 'no-task':
        throw this.refuse(
          taskId,
          new GatewayError(
            'AGENT_NOT_FOUND',
            `agent '${request.agent}' has no instance that handles task '${request.task}'`,
            NOT_DISPATCHED,
          ),
        );
      case 'rate-limited':
        throw this.refuse(
          taskId,
          new GatewayError('RATE_LIMITED', `too many calls for this ${pick.scope} across the cluster`, {
            ...NOT_DISPATCHED,
            retryAfterMs: pick.retryAfterMs,
            details: { scope: pick.scope },
          }),
        );
      case 'moving':
        throw this.refuse(
          taskId,
          new GatewayError(
            'AGENT_UNAVAILABLE',
            `agent '${request.agent}' is moving to another replica (its replica is draining); retry shortly`,
            { ...NOT_DISPATCHED, retryAfterMs: 200 },
          ),
        );
      case 'unreachable':
        throw this.refuse(
          taskId,
          new GatewayError(
            'AGENT_UNAVAILABLE',
            `the replicas holding agent '${request.agent}' are not reporting in (restarting, or gone); retry shortly`,
            { ...NOT_DISPATCHED, retryAfterMs: 500 },
          ),
        );
      case 'busy':
        throw this.refuse(
          taskId,
          new GatewayError(
            'AGENT_UNAVAILABLE',
            `all ${pick.instances} instance(s) of agent '${request.agent}' are at their concurrency limit`,
            { ...NOT_DISPATCHED, retryAfterMs: 100 },
          ),
        );
      case 'http': {
        const httpDeadline = pick.timeoutMs ? Math.min(deadline, createdAt + pick.timeoutMs) : deadline;
        const abort = new AbortController();
        this.endedWhileDispatching.delete(taskId);
        const waiting = this.pending.get(taskId);
        if (!waiting) return { taskId, output }; // Ended (canceled) before the pick returned.
        waiting.abort = abort;
        this.http
          .invoke(
            pick.url,
            {
              taskId,
              task: request.task,
              data: request.data ?? null,
              deadline: httpDeadline,
              from: originOf(request.caller),
              attempt: request.attempt ?? 1,
            },
            abort.signal,
          )
          .then(
            (out) => this.settle(taskId, { output: out }),
            (error: unknown) => this.settle(taskId, { error: asGatewayError(error) }),
          );
        return { taskId, output };
      }
      case 'instance': {
        const pending = this.pending.get(taskId);
        if (!pending) {
          // The task ended before the pick's result was read (its reply, a cancel or the deadline
          // came first): free the slot it was given, and stop the agent if the caller stopped waiting.
          void this.registry.release(pick.instanceId, taskId);
          const stop = this.endedWhileDispatching.get(taskId);
          if (stop) {
            void this.bus
              .send(pick.replicaId, { type: 'task.abort', taskId, instanceId: pick.instanceId, reason: stop })
              .catch(() => undefined);
          }
          this.endedWhileDispatching.delete(taskId);
          return { taskId, output };
        }
        this.endedWhileDispatching.delete(taskId);
        pending.holder = pick.replicaId;
        pending.instanceId = pick.instanceId;
        if (!this.unrecorded.has(taskId)) void this.store.setHolder(taskId, pick.replicaId, pick.instanceId);
        // The dispatch reached no replica (its holder is gone), so no agent got it.
        const gone = (): void =>
          this.settle(taskId, {
            error: new GatewayError(
              'AGENT_UNAVAILABLE',
              `the replica holding agent '${request.agent}' is gone`,
              NOT_DISPATCHED,
            ),
          });
        if (pick.receivers !== undefined) {
          // The pick script published the dispatch to the holder's inbox.
          this.bus.stats.countSent('task.dispatch');
          if (pick.receivers === 0) gone();
          return { taskId, output };
        }
        // Our own replica's instance (or no pre-encoded dispatch): send it ourselves.
        this.bus.send(pick.replicaId, { ...message, instanceId: pick.instanceId }).then(
          (receivers) => {
            if (receivers === 0) gone();
          },
          (error: unknown) => this.settle(taskId, { error: asGatewayError(error) }),
        );
        return { taskId, output };
      }
    }
  }

  /**
   * Claims an idempotency key for a new task. @returns the earlier call's result if it completed.
   * @throws {GatewayError} `CONFLICT` (retryable) while the earlier call is in flight.
   */
  private async claimIdempotencyKey(request: DispatchRequest, taskId: string): Promise<ReplayedCall | undefined> {
    const digest = createHash('sha256')
      .update(`${request.caller.tenant}\n${request.caller.principal}\n${request.idempotencyKey}`)
      .digest('hex')
      .slice(0, 32);
    const key = this.store.keys.idempotency(digest);
    for (let attempt = 0; attempt < 3; attempt++) {
      const claimed = await this.store.redis
        .set(key, taskId, 'PX', TIMINGS.callRecordTtlMs, 'NX')
        .catch((error: unknown) => {
          throw new GatewayError('UNAVAILABLE', 'the task store (Redis) is unavailable; retry shortly', {
            cause: error,
          });
        });
      if (claimed === 'OK') return undefined;
      const earlierId = await this.store.redis.get(key);
      const earlier = earlierId ? await this.store.get(earlierId) : undefined;
      if (earlier?.status === 'completed') return { taskId: earlier.taskId, output: earlier.output ?? null };
      if (earlier && (earlier.status === 'working' || earlier.status === 'submitted')) {
        throw new GatewayError('CONFLICT', 'a call with this idempotencyKey is still in flight', {
          retryable: true,
          retryAfterMs: 500,
          details: { taskId: earlier.taskId },
        });
      }
      // The earlier call failed, was canceled, or its record is gone: this call may run.
      await this.store.redis.del(key);
    }
    throw new GatewayError('CONFLICT', 'the idempotencyKey is contended; retry', {
      retryable: true,
      retryAfterMs: 100,
    });
  }

  /** Handles an agent's reply (from the bus, or from this replica's own agents). */
  handleReply(message: TaskReplyMessage): void {
    const p = this.pending.get(message.taskId);
    if (!p) return; // Late reply after a timeout or cancel: nobody is waiting.
    const outcome = message.outcome;
    switch (outcome.kind) {
      case 'progress':
        try {
          p.onProgress?.(outcome.progress);
        } catch (error) {
          this.logger.warn({ err: error }, 'progress listener failed');
        }
        return;
      case 'result': {
        const message = governanceMessage(p.caller, p.agent, p.task, 'response', outcome.output ?? null);
        if (!this.governance || p.skipGovernance || this.governance.passes(message)) {
          this.settle(p.taskId, { output: outcome.output });
          return;
        }
        // The agent's output is judged too before the caller gets it (the deadline still runs).
        this.governance.check(message, this.approvalContext(p.approval, p.taskId, p.deadline)).then(
          (output) => this.settle(p.taskId, { output }),
          (error: unknown) => this.settle(p.taskId, { error: asGatewayError(error) }),
        );
        return;
      }
      case 'agent-error':
        this.settle(p.taskId, {
          error: new GatewayError('AGENT_ERROR', outcome.error.message || 'the agent reported an error', {
            retryable: outcome.error.retryable ?? false,
            details: { agentCode: outcome.error.code, details: outcome.error.details },
          }),
        });
        return;
      case 'failure':
        this.settle(p.taskId, { error: fromWireError(outcome.error) });
        return;
    }
  }

  /** Cancels a task this replica is the origin of. @returns whether it was waiting here. */
  cancelLocal(taskId: string): boolean {
    if (!this.pending.has(taskId)) return false;
    this.settle(taskId, { error: new GatewayError('CANCELED', 'the task was canceled') }, 'canceled');
    return true;
  }

  /** Handles a cancel asked for on another replica. */
  handleCancelRequest(message: TaskCancelRequestMessage): void {
    this.cancelLocal(message.taskId);
  }

  /**
   * Cancels a task from any replica: the caller's own origin settles it.
   * @throws {GatewayError} `NOT_FOUND` (no such task for this principal) or `CONFLICT` (already ended).
   */
  async cancel(taskId: string, principal: string): Promise<void> {
    if (this.pending.get(taskId)?.caller.principal === principal) {
      this.cancelLocal(taskId);
      return;
    }
    const record = await this.store.get(taskId);
    if (!record || record.principal !== principal) throw new GatewayError('NOT_FOUND', `no task '${taskId}'`);
    if (record.status !== 'working' && record.status !== 'submitted') {
      throw new GatewayError('CONFLICT', `task '${taskId}' has already ended (${record.status})`);
    }
    const receivers = await this.bus.send(record.origin, { type: 'task.cancel-request', taskId });
    if (receivers === 0) {
      // The origin (and so the caller) is gone: still stop the agent and record the cancel.
      if (record.holder && record.instanceId) {
        await this.bus
          .send(record.holder, { type: 'task.abort', taskId, instanceId: record.instanceId, reason: 'canceled' })
          .catch(() => undefined);
      }
      await this.store.finish(taskId, 'canceled', {
        error: new GatewayError('CANCELED', 'the task was canceled').toWire(),
      });
    }
  }

  /**
   * Fails every task held by another replica with `UNAVAILABLE`: called when this replica's bus
   * subscription is lost, because their replies, sent by pub/sub, may already be gone.
   */
  failRemote(message: string): void {
    for (const p of [...this.pending.values()]) {
      if (p.holder !== undefined && p.holder !== this.replicaId) {
        this.settle(p.taskId, { error: new GatewayError('UNAVAILABLE', message) });
      }
    }
  }

  /** Fails every task waiting here with `UNAVAILABLE` (shutdown). */
  failAll(message: string): void {
    for (const taskId of [...this.pending.keys()]) {
      this.settle(taskId, { error: new GatewayError('UNAVAILABLE', message) });
    }
  }

  private approvalContext(
    approval: DispatchApproval | undefined,
    taskId: string,
    deadline: number,
  ): ApprovalContext | undefined {
    if (!approval) return undefined;
    return { ...approval, taskId, deadline, origin: this.replicaId, signal: this.closing.signal };
  }

  /**
   * Stops the watch timer and dispatching: calls waiting for an approval are refused at once
   * (`UNAVAILABLE`, not dispatched); pending tasks still end at their deadlines.
   */
  close(): void {
    this.closed = true;
    clearInterval(this.watchTimer);
    this.closing.abort();
  }

  private track(record: Omit<CallRecord, 'updatedAt'>, request: DispatchRequest, deadline: number): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.settle(record.taskId, {
            error: new GatewayError(
              'TIMEOUT',
              `agent '${request.agent}' did not answer task '${request.task}' within ${request.timeoutMs} ms`,
            ),
          });
        },
        Math.max(0, deadline - Date.now()),
      );
      this.pending.set(record.taskId, {
        taskId: record.taskId,
        agent: request.agent,
        task: request.task,
        caller: request.caller,
        timer,
        deadline,
        startedAt: performance.now(),
        skipGovernance: request.skipGovernance,
        approval: request.approval,
        onProgress: request.onProgress,
        resolve,
        reject,
      });
    });
  }

  /**
   * A task that could not be dispatched: stop waiting for it (its promise is dropped unsettled; the
   * caller gets the error thrown), and record the failure. @returns the error, to throw.
   */
  private refuse(taskId: string, error: GatewayError): GatewayError {
    const p = this.pending.get(taskId);
    if (p) {
      clearTimeout(p.timer);
      this.pending.delete(taskId);
    }
    this.endedWhileDispatching.delete(taskId);
    this.recordEnd(taskId, 'failed', { error: error.toWire() });
    return error;
  }

  private recordEnd(taskId: string, status: TaskState, result: { output?: unknown; error?: WireError }): void {
    if (this.unrecorded.delete(taskId)) return;
    void this.store.finish(taskId, status, result);
  }

  /**
   * Ends a task waiting here with an error, and tells its agent to stop (a worker handing its
   * tasks back on shutdown). @returns whether it was waiting here.
   */
  interrupt(taskId: string, error: GatewayError): boolean {
    const p = this.pending.get(taskId);
    if (!p) return false;
    const holder = p.holder;
    const instanceId = p.instanceId;
    this.settle(taskId, { error });
    if (holder && instanceId) {
      void this.bus.send(holder, { type: 'task.abort', taskId, instanceId, reason: 'canceled' }).catch(() => undefined);
    } else if (this.endedWhileDispatching.has(taskId)) {
      // Still being matched to an agent: the instance it lands on is told to stop once it is known.
      this.endedWhileDispatching.set(taskId, 'canceled');
    }
    return true;
  }

  /** {@link interrupt}s every task waiting here (a worker handing its tasks back on shutdown). */
  failAllWith(error: GatewayError): void {
    for (const taskId of [...this.pending.keys()]) this.interrupt(taskId, error);
  }

  /** Ends a task exactly once: answers the caller, frees the slot, tells the agent, records it. */
  private settle(taskId: string, result: { output: unknown } | { error: GatewayError }, status?: 'canceled'): void {
    const p = this.pending.get(taskId);
    if (!p) return;
    this.pending.delete(taskId);
    clearTimeout(p.timer);
    if (p.instanceId) void this.registry.release(p.instanceId, taskId);
    else if (p.abort === undefined) this.endedWhileDispatching.set(taskId, abortReason(result));
    if (this.onRouted && (p.holder !== undefined || p.abort !== undefined)) {
      const route: RouteKind = p.abort !== undefined ? 'http' : p.holder === this.replicaId ? 'local' : 'remote';
      this.onRouted(route, (performance.now() - p.startedAt) / 1000, 'output' in result);
    }
    if ('output' in result) {
      p.resolve(result.output);
      this.recordEnd(taskId, 'completed', { output: result.output });
      return;
    }
    const error = result.error;
    p.reject(error);
    const finalStatus = status ?? (error.code === 'CANCELED' ? 'canceled' : 'failed');
    this.recordEnd(taskId, finalStatus, { error: error.toWire() as WireError });
    // The agent may still be working: tell it to stop when the caller stopped waiting.
    if ((error.code === 'TIMEOUT' || error.code === 'CANCELED') && p.holder && p.instanceId) {
      void this.bus
        .send(p.holder, {
          type: 'task.abort',
          taskId,
          instanceId: p.instanceId,
          reason: error.code === 'TIMEOUT' ? 'deadline' : 'canceled',
        })
        .catch(() => undefined);
    }
    p.abort?.abort();
  }

  /**
   * Fails fast the tasks held by replicas that died, and the tasks whose replies cannot arrive
   * because this replica's bus lost Redis (pub/sub is at most once: they would only time out).
   */
  private async watchHolders(): Promise<void> {
    if (this.watching || this.pending.size === 0) return;
    this.watching = true;
    try {
      const remote = [...this.pending.values()].filter((p) => p.holder !== undefined && p.holder !== this.replicaId);
      if (remote.length === 0) return;
      if (!this.bus.healthy()) {
        for (const p of remote) {
          this.settle(p.taskId, {
            error: new GatewayError('UNAVAILABLE', 'lost the connection to the cluster bus; the reply cannot arrive'),
          });
        }
        return;
      }
      const holders = new Set(remote.map((p) => p.holder!));
      for (const holder of holders) {
        const alive = await this.registry.isReplicaAlive(holder).catch(() => true);
        if (alive) continue;
        for (const p of remote) {
          if (p.holder === holder) {
            this.settle(p.taskId, {
              error: new GatewayError(
                'AGENT_UNAVAILABLE',
                `the replica holding agent '${p.agent}' went away before it answered`,
              ),
            });
          }
        }
      }
    } finally {
      this.watching = false;
    }
  }
}

/** The abort an agent needs when a task ends this way: only when the caller stopped waiting. */
function abortReason(result: { output: unknown } | { error: GatewayError }): 'deadline' | 'canceled' | undefined {
  if ('output' in result) return undefined;
  if (result.error.code === 'TIMEOUT') return 'deadline';
  if (result.error.code === 'CANCELED') return 'canceled';
  return undefined;
}

function governanceMessage(
  caller: TaskCaller,
  agent: string,
  task: string,
  direction: 'request' | 'response',
  data: unknown,
): GovernedMessage {
  const message: GovernedMessage = {
    direction,
    tenant: caller.tenant,
    principal: caller.principal,
    roles: caller.roles ?? [],
    agent,
    task,
    data,
    agents: caller.agents ?? [],
  };
  if (caller.delegationDepth !== undefined) message.delegationDepth = caller.delegationDepth;
  return message;
}

function originOf(caller: TaskCaller): TaskOrigin {
  const from: TaskOrigin = { principal: caller.principal };
  if (caller.agent !== undefined) from.agent = caller.agent;
  if (caller.onBehalfOf !== undefined) from.onBehalfOf = caller.onBehalfOf;
  if (caller.chain !== undefined) from.chain = caller.chain;
  if (caller.agents !== undefined && caller.agents.length > 0) from.agents = caller.agents;
  return from;
}

/** Options of an error raised before any agent received the task. */
const NOT_DISPATCHED = { dispatched: false } as const;

function asGatewayError(error: unknown): GatewayError {
  return error instanceof GatewayError ? error : new GatewayError('INTERNAL', 'internal error', { cause: error });
}
