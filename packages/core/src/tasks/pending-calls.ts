import type { TaskState, WireError } from '@openclaw/protocol';
import { GatewayError } from '@openclaw/protocol';
import type { ClusterBus } from '../bus/cluster-bus';
import type { AgentRegistry } from '../registry/agent-registry';
import type { CallRecord, CallRecords } from './call-records';
import type { DispatchApproval, DispatchRequest, TaskCaller } from './dispatch-request';

/** Where a routed task's agent was. */
export type RouteKind = 'local' | 'remote' | 'http' | 'region';

/** A routed call waiting here for its end. */
export interface PendingCall {
  taskId: string;
  agent: string;
  task: string;
  caller: TaskCaller;
  /** Replica holding the agent instance, for WebSocket agents. */
  holder?: string;
  instanceId?: string;
  /** Aborts an HTTP agent call. */
  abort?: AbortController;
  /** The linked region the call was sent to, if it was. */
  region?: string;
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

/** Options of {@link PendingCalls}. */
export interface PendingCallsOptions {
  replicaId: string;
  /** Tells whether a holder replica is alive. */
  registry: Pick<AgentRegistry, 'isReplicaAlive'>;
  bus: ClusterBus;
  store: CallRecords;
  /** How often to check that replicas holding our tasks are alive. */
  watchIntervalMs: number;
  /** Told of every routed task as it ends (see `TaskDispatcherOptions.onRouted`). */
  onRouted?: (route: RouteKind, seconds: number, completed: boolean) => void;
  /**
   * How long the bus may be unhealthy, or a holder be without a current heartbeat, before the calls
   * held on other replicas (or on that holder) are failed: their answers are sent again by their
   * holders meanwhile. Default 0: at once.
   */
  busLossGraceMs?: number;
}

/**
 * The calls this replica is the origin of, each from just before its pick until it ends. A call ends
 * exactly once ({@link settle}): the caller is answered, the agent told to stop when the caller
 * stopped waiting, and the end recorded. A call may end while its pick is still in flight: the
 * pick's continuation then stops the agent ({@link dispatchedTo}). A watch fails fast the calls
 * held by a replica that died, or whose replies cannot reach this replica.
 */
export class PendingCalls {
  /** Since when the bus has been unhealthy, while it is. */
  private unhealthySince: number | undefined;
  /** Holders of calls found without a current heartbeat, and since when. */
  private readonly holderGoneSince = new Map<string, number>();
  private readonly busLossGraceMs: number;
  private readonly replicaId: string;
  private readonly registry: PendingCallsOptions['registry'];
  private readonly bus: ClusterBus;
  private readonly store: CallRecords;
  private readonly onRouted: PendingCallsOptions['onRouted'];
  private readonly calls = new Map<string, PendingCall>();
  /** Calls in flight here per agent instance (routing prefers the least loaded). */
  private readonly loads = new Map<string, number>();
  /** Tasks whose end is recorded elsewhere (async attempts): no sync record is written. */
  private readonly unrecorded = new Set<string>();
  private readonly watchTimer: NodeJS.Timeout;
  private watching = false;

  constructor(options: PendingCallsOptions) {
    this.replicaId = options.replicaId;
    this.busLossGraceMs = options.busLossGraceMs ?? 0;
    this.registry = options.registry;
    this.bus = options.bus;
    this.store = options.store;
    this.onRouted = options.onRouted;
    this.watchTimer = setInterval(() => void this.watchHolders(), options.watchIntervalMs);
    this.watchTimer.unref();
  }

  /** How many calls are waiting here. */
  get size(): number {
    return this.calls.size;
  }

  /** The call waiting here for a task, if any. */
  get(taskId: string): PendingCall | undefined {
    return this.calls.get(taskId);
  }

  /** Whether a call waits here for a task. */
  has(taskId: string): boolean {
    return this.calls.has(taskId);
  }

  /** How many of the calls waiting here an instance holds. */
  readonly loadOf = (instanceId: string): number => this.loads.get(instanceId) ?? 0;

  private addLoad(instanceId: string, delta: number): void {
    const n = (this.loads.get(instanceId) ?? 0) + delta;
    if (n > 0) this.loads.set(instanceId, n);
    else this.loads.delete(instanceId);
  }

  /**
   * The instance a call was sent to refused it (busy, or gone): the call waits on, routed nowhere,
   * until it is routed again ({@link dispatchedTo}). @returns the call, if it still waits.
   */
  redirect(taskId: string): PendingCall | undefined {
    const p = this.calls.get(taskId);
    if (!p) return undefined;
    if (p.instanceId) this.addLoad(p.instanceId, -1);
    p.holder = undefined;
    p.instanceId = undefined;
    return p;
  }

  /** The task ids of the calls waiting here. */
  keys(): IterableIterator<string> {
    return this.calls.keys();
  }

  /**
   * Starts waiting for a task, until its deadline (`TIMEOUT`). A request with `record: false` gets
   * no sync record of its end. @returns the output, as the caller's handle gives it.
   */
  track(record: Omit<CallRecord, 'updatedAt'>, request: DispatchRequest, deadline: number): Promise<unknown> {
    if (request.record === false) this.unrecorded.add(record.taskId);
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
      this.calls.set(record.taskId, {
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
   * Records the instance a task's pick chose, before the task is sent there. @returns false when
   * the task ended before the pick returned: it is not sent then.
   */
  dispatchedTo(taskId: string, holder: string, instanceId: string): boolean {
    const pending = this.calls.get(taskId);
    // Ended (a cancel or the deadline) before the pick returned: nothing was sent anywhere.
    if (!pending) return false;
    pending.holder = holder;
    pending.instanceId = instanceId;
    this.addLoad(instanceId, 1);
    if (!this.unrecorded.has(taskId)) void this.store.setHolder(taskId, holder, instanceId);
    return true;
  }

  /**
   * Records that a task's pick chose an HTTP agent (or that it goes to a linked `region`). @returns
   * the signal that aborts the HTTP call when the task ends, or undefined when it ended (canceled)
   * before the pick returned.
   */
  dispatchedToHttpAgent(taskId: string, region?: string): AbortSignal | undefined {
    const abort = new AbortController();
    const waiting = this.calls.get(taskId);
    if (!waiting) return undefined;
    waiting.abort = abort;
    waiting.region = region;
    return abort.signal;
  }

  /**
   * A task that could not be dispatched: stop waiting for it (its promise is dropped unsettled; the
   * caller gets the error thrown), and record the failure. @returns the error, to throw.
   */
  refuse(taskId: string, error: GatewayError): GatewayError {
    const p = this.calls.get(taskId);
    if (p) {
      clearTimeout(p.timer);
      this.calls.delete(taskId);
    }
    this.recordEnd(taskId, 'failed', { error: error.toWire() });
    return error;
  }

  /** Ends a task exactly once: answers the caller, tells the agent, records it. */
  settle(taskId: string, result: { output: unknown } | { error: GatewayError }, status?: 'canceled'): void {
    const p = this.calls.get(taskId);
    if (!p) return;
    this.calls.delete(taskId);
    clearTimeout(p.timer);
    if (p.instanceId) this.addLoad(p.instanceId, -1);
    if (this.onRouted && (p.holder !== undefined || p.abort !== undefined)) {
      const route: RouteKind =
        p.region !== undefined
          ? 'region'
          : p.abort !== undefined
            ? 'http'
            : p.holder === this.replicaId
              ? 'local'
              : 'remote';
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
   * Ends a task waiting here with an error, and tells its agent to stop (a worker handing its
   * tasks back on shutdown). @returns whether it was waiting here.
   */
  interrupt(taskId: string, error: GatewayError): boolean {
    const p = this.calls.get(taskId);
    if (!p) return false;
    const holder = p.holder;
    const instanceId = p.instanceId;
    this.settle(taskId, { error });
    if (holder && instanceId) {
      void this.bus.send(holder, { type: 'task.abort', taskId, instanceId, reason: 'canceled' }).catch(() => undefined);
    }
    return true;
  }

  /** Fails every task held by another replica with `UNAVAILABLE`. */
  failRemote(message: string): void {
    for (const p of [...this.calls.values()]) {
      if (p.holder !== undefined && p.holder !== this.replicaId) {
        this.settle(p.taskId, { error: new GatewayError('UNAVAILABLE', message) });
      }
    }
  }

  /** Fails every task waiting here with `UNAVAILABLE`. */
  failAll(message: string): void {
    for (const taskId of [...this.calls.keys()]) {
      this.settle(taskId, { error: new GatewayError('UNAVAILABLE', message) });
    }
  }

  /** Stops the watch of holders; the calls still waiting end at their deadlines. Idempotent. */
  close(): void {
    clearInterval(this.watchTimer);
  }

  private recordEnd(taskId: string, status: TaskState, result: { output?: unknown; error?: WireError }): void {
    if (this.unrecorded.delete(taskId)) return;
    void this.store.finish(taskId, status, result);
  }

  /**
   * Fails fast the tasks held by replicas that died, and the tasks whose replies cannot arrive
   * because this replica's bus lost Redis (pub/sub is at most once: they would only time out).
   */
  private async watchHolders(): Promise<void> {
    if (this.watching || this.calls.size === 0) return;
    this.watching = true;
    try {
      const remote = [...this.calls.values()].filter((p) => p.holder !== undefined && p.holder !== this.replicaId);
      if (remote.length === 0) return;
      if (!this.bus.healthy()) {
        this.unhealthySince ??= Date.now();
        if (Date.now() - this.unhealthySince < this.busLossGraceMs) return;
        for (const p of remote) {
          this.settle(p.taskId, {
            error: new GatewayError('UNAVAILABLE', 'lost the connection to the cluster bus; the reply cannot arrive'),
          });
        }
        return;
      }
      this.unhealthySince = undefined;
      const holders = new Set(remote.map((p) => p.holder!));
      for (const gone of this.holderGoneSince.keys()) if (!holders.has(gone)) this.holderGoneSince.delete(gone);
      for (const holder of holders) {
        const alive = await this.registry.isReplicaAlive(holder).catch(() => true);
        if (alive) {
          this.holderGoneSince.delete(holder);
          continue;
        }
        // On Redis Cluster a holder may be unable to write its heartbeat while a master fails over.
        const since = this.holderGoneSince.get(holder) ?? Date.now();
        this.holderGoneSince.set(holder, since);
        if (Date.now() - since < this.busLossGraceMs) continue;
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
