import { GatewayError } from '@openclaw/protocol';
import type { OutgoingBusMessage, TaskCancelRequestMessage, TaskReplyMessage } from '../bus/bus-message';
import type { ClusterBus } from '../bus/cluster-bus';
import type { RegionPeer } from '../config/region-peers';
import { fromWireError } from '../errors/gateway-error';
import type { GovernanceGate } from '../governance/governance-gate';
import type { RegionLink } from '../regions/region-link';
import type { AgentRegistry } from '../registry/agent-registry';
import { type PickResult, qualifiedAgent } from '../registry/agent-routing';
import type { Logger } from '../telemetry/logger';
import { CallIdempotencyKeys } from './call-idempotency-keys';
import type { CallRecord, CallRecords } from './call-records';
import { DispatchGovernance } from './dispatch-governance';
import { type DispatchHandle, type DispatchRequest, originOf, type ReplayedCall } from './dispatch-request';
import type { HttpAgentClient } from './http-agent-client';
import { type PendingCall, PendingCalls, type RouteKind } from './pending-calls';
import type { ResultCache } from './result-cache';
import { newTaskId } from './task-ids';

/** How long a cancel for a task not waiting here is kept for a dispatch of it about to begin. */
const EARLY_CANCEL_KEEP_MS = 10_000;
/** At most this many such cancels are kept. */
const EARLY_CANCELS_MAX = 1000;
/** How often a replica that sent a cancel to a call's origin reads the call's record for its end. */
const CANCEL_POLL_MS = 5;
/** How long a replica that sent a cancel to a call's origin waits for the origin to record it. */
const CANCEL_RECORD_WAIT_MS = 2_000;

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
  /** The link to other regions, when this cluster is linked with some. */
  regions?: RegionLink;
  /**
   * How long the bus may be unhealthy before calls held on other replicas are failed (see
   * `PendingCallsOptions.busLossGraceMs`). Default 0.
   */
  busLossGraceMs?: number;
  /** The result cache, for calls to tasks their agents declared cacheable. */
  cache?: ResultCache;
  /** Told of every call sent to another region (for the audit trail). */
  onForwarded?: (request: DispatchRequest, region: string) => void;
}

/** The dispatch of a task to an instance. */
type DispatchMessage = Extract<OutgoingBusMessage, { type: 'task.dispatch' }>;

/** A routed call, as routing it again needs it. */
interface Routing {
  request: DispatchRequest;
  /** The qualified agent name. */
  agent: string;
  /** The dispatch (its instance id is filled in per send). */
  message: DispatchMessage;
  createdAt: number;
  /** Instances that refused it: not picked again. */
  refusedBy: Set<string>;
}

/**
 * The origin side of sync tasks: picks an instance, sends the task to the replica holding it (one
 * publish to that replica's inbox), and holds the deadline. A task always ends exactly once: with
 * the agent's output, the agent's error, `TIMEOUT` at the deadline, `CANCELED`, or a fast
 * `AGENT_UNAVAILABLE` / `UNAVAILABLE` when the holder or the bus is lost.
 *
 * A call is admitted ({@link DispatchGovernance}, {@link CallIdempotencyKeys}), then routed; the
 * calls waiting here, their ends and the watch of their holders are {@link PendingCalls}.
 */
export class TaskDispatcher {
  private readonly replicaId: string;
  private readonly registry: AgentRegistry;
  private readonly bus: ClusterBus;
  private readonly store: CallRecords;
  private readonly http: HttpAgentClient;
  private readonly regions: RegionLink | undefined;
  private readonly cache: ResultCache | undefined;
  /** Calls that lead a cache flight, and whether governance changed their output (then not cached). */
  private readonly leading = new Map<string, { judged: boolean }>();
  private readonly onForwarded: ((request: DispatchRequest, region: string) => void) | undefined;
  private readonly logger: Logger;
  private readonly governance: DispatchGovernance | undefined;
  private readonly idempotency: CallIdempotencyKeys;
  private readonly pending: PendingCalls;
  /** What routing again needs of each routed call still waiting. */
  private readonly routings = new Map<string, Routing>();
  /**
   * Cancels asked for tasks that were not waiting here yet (a worker between the start of an attempt
   * and its dispatch): a dispatch of one of them that begins before the time kept is canceled at once.
   */
  private readonly earlyCancels = new Map<string, number>();
  private closed = false;
  /** Aborted by {@link close}: ends the approval waits of calls still in admission. */
  private readonly closing = new AbortController();

  constructor(options: TaskDispatcherOptions) {
    this.replicaId = options.replicaId;
    this.registry = options.registry;
    this.bus = options.bus;
    this.store = options.store;
    this.http = options.http;
    this.regions = options.regions;
    this.cache = options.cache;
    this.onForwarded = options.onForwarded;
    this.logger = options.logger;
    this.governance = options.governance
      ? new DispatchGovernance({ gate: options.governance, replicaId: options.replicaId, signal: this.closing.signal })
      : undefined;
    this.idempotency = new CallIdempotencyKeys(options.store);
    this.pending = new PendingCalls({
      replicaId: options.replicaId,
      registry: options.registry,
      bus: options.bus,
      store: options.store,
      watchIntervalMs: options.watchIntervalMs ?? 1000,
      onRouted: options.onRouted,
      busLossGraceMs: options.busLossGraceMs,
    });
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
    const taskId = request.taskId ?? newTaskId();
    const deadline = Date.now() + request.timeoutMs;
    let replay: ReplayedCall | undefined;
    let plain = false;
    try {
      ({ request, replay, plain } = await this.admit(request, taskId, deadline));
    } catch (error) {
      throw asGatewayError(error).undispatched();
    }
    if (replay) return { taskId: replay.taskId, replayed: true, output: Promise.resolve(replay.output) };
    // Only a request governance let through as it was may be answered from (or fill) the cache.
    if (this.cache && request.cache === true && plain && request.idempotencyKey === undefined) {
      const ttlMs = await this.cache.ttlOf(request.caller.tenant, request.agent, request.task);
      if (ttlMs !== undefined) return this.viaCache(this.cache, request, taskId, deadline, ttlMs);
    }
    return this.route(request, taskId, deadline);
  }

  /**
   * A call to a cacheable task: answered from the cache, or by an identical call in flight, or routed
   * (leading the flight), its output then stored unless governance changed it.
   */
  private async viaCache(
    cache: ResultCache,
    request: DispatchRequest,
    taskId: string,
    deadline: number,
    ttlMs: number,
  ): Promise<DispatchHandle> {
    const { tenant } = request.caller;
    const outcome = await cache.lookup(tenant, request.agent, request.task, request.data, ttlMs, deadline);
    if (outcome.kind !== 'lead') return { taskId, cached: true, output: Promise.resolve(outcome.output) };
    this.leading.set(taskId, { judged: false });
    let handle: DispatchHandle;
    try {
      handle = await this.route(request, taskId, deadline);
    } catch (error) {
      this.leading.delete(taskId);
      await outcome.done({ error: asGatewayError(error) });
      throw error;
    }
    // The caller is answered once a cacheable output is stored: a call made after the answer finds it.
    const output = handle.output.then(
      async (out) => {
        const judged = this.leading.get(taskId)?.judged ?? true;
        this.leading.delete(taskId);
        await outcome.done({ output: out, cacheable: !judged });
        return out;
      },
      async (error: unknown) => {
        this.leading.delete(taskId);
        await outcome.done({ error: asGatewayError(error) });
        throw error;
      },
    );
    return { ...handle, output };
  }

  /**
   * What comes before routing: the bus check, governance (and a wait for an approval), the
   * idempotency key. @returns the request as judged, or the earlier call's result to replay.
   */
  private async admit(
    request: DispatchRequest,
    taskId: string,
    deadline: number,
  ): Promise<{ request: DispatchRequest; replay?: ReplayedCall; plain: boolean }> {
    if (this.closed) throw new GatewayError('UNAVAILABLE', 'this replica is shutting down; retry on another');
    if (!this.bus.healthy()) {
      // A reply could not reach us: refuse now rather than time out later.
      throw new GatewayError('UNAVAILABLE', 'this replica is not connected to the cluster bus; retry shortly');
    }
    // Refused (POLICY_DENIED) before anything is written or routed; masked where a validator
    // redacted; held here (within the deadline) while it waits for an approval.
    const judged = this.governance?.judgeRequest(request, taskId, deadline);
    let plain = true;
    if (judged) {
      request = await judged;
      plain = this.governance!.unchanged(request);
    }
    if (request.idempotencyKey !== undefined) {
      const replay = await this.idempotency.claim(request, taskId);
      if (replay) return { request, replay, plain };
    }
    // Checked again after the waits above: a replica that began shutting down dispatches nothing more.
    if (this.closed) throw new GatewayError('UNAVAILABLE', 'this replica is shutting down; retry on another');
    return { request, plain };
  }

  /** Picks an instance (or HTTP agent) for an admitted task and sends it there. */
  private async route(request: DispatchRequest, taskId: string, deadline: number): Promise<DispatchHandle> {
    // Closed between the admission and here: nothing was sent (and nothing is tracked to be failed).
    if (this.closed) {
      throw new GatewayError('UNAVAILABLE', 'this replica is shutting down; retry on another', NOT_DISPATCHED);
    }
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
    const message: DispatchMessage = {
      type: 'task.dispatch',
      taskId,
      task: request.task,
      data: request.data ?? null,
      from: originOf(request.caller),
      deadline,
      attempt: request.attempt ?? 1,
      traceparent: request.traceparent,
      instanceId: '',
      thread: request.thread,
    };
    // Waiting from before the pick: a reply can never find nobody expecting it.
    const output = this.pending.track(record, request, deadline);
    if (this.takeEarlyCancel(taskId)) {
      this.cancelLocal(taskId);
      return { taskId, output };
    }
    // Written first on this connection, so it is in Redis before any write that ends the task.
    if (request.record !== false) {
      void this.store.create(record, { deadline, keyed: request.idempotencyKey !== undefined }).catch(() => undefined);
    }
    // Agents are per tenant: the caller's tenant names which agent this is.
    const agent = qualifiedAgent(request.caller.tenant, request.agent);
    let pick: PickResult;
    try {
      pick = await this.registry.pick(agent, request.task, {
        limits: request.caller.limits,
        load: this.pending.loadOf,
      });
    } catch (error) {
      throw this.pending.refuse(taskId, asGatewayError(error));
    }
    if (pick.kind === 'none' && this.regions && request.fromRegion === undefined) {
      // No instance in this region: a linked region that has one runs it (a call from another
      // region is never sent on: no loops).
      let peer: RegionPeer | undefined;
      try {
        peer = await this.regions.regionOf(agent);
      } catch (error) {
        throw this.pending.refuse(taskId, asGatewayError(error).undispatched());
      }
      if (peer) {
        this.sendToRegion(request, taskId, peer, deadline);
        return { taskId, output };
      }
    }
    if (pick.kind !== 'instance' && pick.kind !== 'http') throw this.pending.refuse(taskId, refusalOf(pick, request));
    const routing: Routing = { request, agent, message, createdAt, refusedBy: new Set() };
    this.routings.set(taskId, routing);
    const forget = (): void => void this.routings.delete(taskId);
    output.then(forget, forget);
    this.send(taskId, routing, pick);
    return { taskId, output };
  }

  /** Sends a routed task where its pick chose. */
  private send(taskId: string, routing: Routing, pick: Extract<PickResult, { kind: 'instance' | 'http' }>): void {
    if (pick.kind === 'instance') {
      this.sendToInstance(taskId, routing, pick);
      return;
    }
    const deadline = routing.message.deadline;
    const httpDeadline = pick.timeoutMs ? Math.min(deadline, routing.createdAt + pick.timeoutMs) : deadline;
    this.sendToHttpAgent(routing.request, taskId, pick.url, httpDeadline);
  }

  /**
   * Sends a task to the instance its pick chose. A dispatch that reached no replica (its holder is
   * gone) is routed again: no agent got it.
   */
  private sendToInstance(taskId: string, routing: Routing, pick: Extract<PickResult, { kind: 'instance' }>): void {
    if (!this.pending.dispatchedTo(taskId, pick.replicaId, pick.instanceId)) return;
    this.bus.send(pick.replicaId, { ...routing.message, instanceId: pick.instanceId }).then(
      (receivers) => {
        if (receivers === 0) this.reroute(taskId, pick.instanceId, 'gone');
      },
      (error: unknown) => this.pending.settle(taskId, { error: asGatewayError(error) }),
    );
  }

  /**
   * The instance a task was sent to did not take it (busy, or gone): the task is routed to another
   * instance, from a fresh copy of the registry when one was gone, or refused as the pick says
   * (`dispatched: false`) when none is left.
   */
  private reroute(taskId: string, instanceId: string, reason: 'busy' | 'gone'): void {
    const routing = this.routings.get(taskId);
    if (!routing || !this.pending.redirect(taskId)) return;
    routing.refusedBy.add(instanceId);
    const { request } = routing;
    this.registry
      .pick(routing.agent, request.task, {
        load: this.pending.loadOf,
        exclude: routing.refusedBy,
        fresh: reason === 'gone',
      })
      .then(
        (pick) => {
          if (!this.pending.has(taskId)) {
            if (pick.kind === 'instance') this.pending.dispatchedTo(taskId, pick.replicaId, pick.instanceId);
            return;
          }
          if (pick.kind === 'instance' || pick.kind === 'http') this.send(taskId, routing, pick);
          else if (pick.kind === 'busy' && reason === 'gone') {
            // The instances left are those that refused it: the last one because its replica is gone.
            this.pending.settle(taskId, {
              error: new GatewayError(
                'AGENT_UNAVAILABLE',
                `the replica holding agent '${request.agent}' is gone; retry shortly`,
                { ...NOT_DISPATCHED, retryAfterMs: 500 },
              ),
            });
          } else this.pending.settle(taskId, { error: refusalOf(pick, request) });
        },
        (error: unknown) => this.pending.settle(taskId, { error: asGatewayError(error).undispatched() }),
      );
  }

  /** Calls the HTTP agent its pick chose; the call is aborted when the task ends first. */
  private sendToHttpAgent(request: DispatchRequest, taskId: string, url: string, deadline: number): void {
    const signal = this.pending.dispatchedToHttpAgent(taskId);
    if (!signal) return; // Ended (canceled) before the pick returned.
    this.http
      .invoke(
        url,
        {
          taskId,
          task: request.task,
          data: request.data ?? null,
          deadline,
          from: originOf(request.caller),
          attempt: request.attempt ?? 1,
          thread: request.thread,
        },
        signal,
      )
      .then(
        (out) => this.pending.settle(taskId, { output: out }),
        (error: unknown) => this.pending.settle(taskId, { error: asGatewayError(error) }),
      );
  }

  /**
   * Ends a call with its agent's output, once governance has judged it (the deadline still runs):
   * the caller gets it as judged (masked where a validator redacted), or the refusal.
   */
  private settleOutput(p: PendingCall, output: unknown): void {
    const leading = this.leading.get(p.taskId);
    const seen = leading ? { approved: false } : undefined;
    const judged = this.governance?.judgeOutput(p, output ?? null, seen);
    if (!judged) {
      this.pending.settle(p.taskId, { output });
      return;
    }
    judged.then(
      (out) => {
        // Redacted, or let through by an approval: not for the cache.
        if (leading && (out !== (output ?? null) || seen?.approved)) leading.judged = true;
        this.pending.settle(p.taskId, { output: out });
      },
      (error: unknown) => this.pending.settle(p.taskId, { error: asGatewayError(error) }),
    );
  }

  /**
   * Sends a call to a linked region whose directory entry names the agent: the link's POST ends it
   * (aborted when the caller cancels or its deadline passes). The other region judges and audits
   * it as its own; the output is judged here again before the caller gets it.
   */
  private sendToRegion(request: DispatchRequest, taskId: string, peer: RegionPeer, deadline: number): void {
    const regions = this.regions!;
    const signal = this.pending.dispatchedToHttpAgent(taskId, peer.name);
    if (!signal) return; // Ended (canceled) before the directory answered.
    const from = originOf(request.caller);
    regions
      .forward(
        peer,
        {
          taskId,
          region: regions.region,
          tenant: request.caller.tenant,
          principal: request.caller.principal,
          agent: request.agent,
          task: request.task,
          data: request.data ?? null,
          timeoutMs: Math.max(1, deadline - Date.now()),
          from: { agent: from.agent, onBehalfOf: from.onBehalfOf, chain: from.chain },
          roles: request.caller.roles === undefined ? undefined : [...request.caller.roles],
        },
        signal,
      )
      .then(
        (output) => {
          const p = this.pending.get(taskId);
          if (p) this.settleOutput(p, output);
        },
        (error: unknown) => this.pending.settle(taskId, { error: asGatewayError(error) }),
      );
    this.onForwarded?.(request, peer.name);
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
      case 'result':
        this.settleOutput(p, outcome.output);
        return;
      case 'agent-error':
        this.pending.settle(p.taskId, {
          error: new GatewayError('AGENT_ERROR', outcome.error.message || 'the agent reported an error', {
            retryable: outcome.error.retryable ?? false,
            details: { agentCode: outcome.error.code, details: outcome.error.details },
          }),
        });
        return;
      case 'failure':
        this.pending.settle(p.taskId, { error: fromWireError(outcome.error) });
        return;
      case 'refused':
        if (p.instanceId === message.instanceId) this.reroute(p.taskId, message.instanceId, outcome.reason);
        return;
    }
  }

  /** Cancels a task this replica is the origin of. @returns whether it was waiting here. */
  cancelLocal(taskId: string): boolean {
    if (!this.pending.has(taskId)) return false;
    this.pending.settle(taskId, { error: new GatewayError('CANCELED', 'the task was canceled') }, 'canceled');
    return true;
  }

  /**
   * Handles a cancel asked for on another replica. One for a task not waiting here (yet) is kept a
   * while, for a dispatch of it about to begin.
   */
  handleCancelRequest(message: TaskCancelRequestMessage): void {
    if (this.cancelLocal(message.taskId)) return;
    const now = Date.now();
    if (this.earlyCancels.size >= EARLY_CANCELS_MAX) {
      for (const [taskId, until] of this.earlyCancels) if (until <= now) this.earlyCancels.delete(taskId);
      // Still full: the oldest go (a Map keeps the order of insertion).
      for (const taskId of this.earlyCancels.keys()) {
        if (this.earlyCancels.size < EARLY_CANCELS_MAX) break;
        this.earlyCancels.delete(taskId);
      }
    }
    this.earlyCancels.set(message.taskId, now + EARLY_CANCEL_KEEP_MS);
  }

  private takeEarlyCancel(taskId: string): boolean {
    if (this.earlyCancels.size === 0) return false;
    const until = this.earlyCancels.get(taskId);
    if (until === undefined) return false;
    this.earlyCancels.delete(taskId);
    return until > Date.now();
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
    if (receivers > 0) {
      await this.recordedEnd(taskId);
      return;
    }
    // The origin (and so the caller) is gone: still stop the agent and record the cancel.
    if (record.holder && record.instanceId) {
      await this.bus
        .send(record.holder, { type: 'task.abort', taskId, instanceId: record.instanceId, reason: 'canceled' })
        .catch(() => undefined);
    }
    await this.store.finish(
      taskId,
      'canceled',
      { error: new GatewayError('CANCELED', 'the task was canceled').toWire() },
      record,
    );
  }

  /**
   * Waits until the origin, told to cancel a call, has written its end: a `task.get` on any replica
   * after the cancel's answer reads it. Reads the record every {@link CANCEL_POLL_MS}, for up to
   * {@link CANCEL_RECORD_WAIT_MS} (an origin that writes nothing by then still got the cancel).
   * @throws {GatewayError} `CONFLICT` when the call ended otherwise first (it completed, or failed).
   */
  private async recordedEnd(taskId: string): Promise<void> {
    const giveUpAt = Date.now() + CANCEL_RECORD_WAIT_MS;
    while (Date.now() < giveUpAt) {
      await new Promise((resolve) => setTimeout(resolve, CANCEL_POLL_MS));
      const status = (await this.store.get(taskId).catch(() => undefined))?.status;
      if (status === 'canceled') return;
      if (status !== undefined && status !== 'working' && status !== 'submitted') {
        throw new GatewayError('CONFLICT', `task '${taskId}' has already ended (${status})`);
      }
    }
  }

  /**
   * Fails every task held by another replica with `UNAVAILABLE`: called when this replica's bus
   * subscription is lost, because their replies, sent by pub/sub, may already be gone.
   */
  failRemote(message: string): void {
    this.pending.failRemote(message);
  }

  /** Fails every task waiting here with `UNAVAILABLE` (shutdown). */
  failAll(message: string): void {
    this.pending.failAll(message);
  }

  /**
   * Stops the watch timer and dispatching: calls waiting for an approval are refused at once
   * (`UNAVAILABLE`, not dispatched); pending tasks still end at their deadlines.
   */
  close(): void {
    this.closed = true;
    this.pending.close();
    this.closing.abort();
  }

  /**
   * Ends a task waiting here with an error, and tells its agent to stop (a worker handing its
   * tasks back on shutdown). @returns whether it was waiting here.
   */
  interrupt(taskId: string, error: GatewayError): boolean {
    return this.pending.interrupt(taskId, error);
  }

  /** {@link interrupt}s every task waiting here (a worker handing its tasks back on shutdown). */
  failAllWith(error: GatewayError): void {
    for (const taskId of [...this.pending.keys()]) this.interrupt(taskId, error);
  }
}

/** The error of a pick that found nowhere to send the task (nothing was dispatched). */
function refusalOf(pick: Exclude<PickResult, { kind: 'instance' | 'http' }>, request: DispatchRequest): GatewayError {
  switch (pick.kind) {
    case 'none':
      return new GatewayError('AGENT_NOT_FOUND', `no agent named '${request.agent}' is registered`, NOT_DISPATCHED);
    case 'no-task':
      return new GatewayError(
        'AGENT_NOT_FOUND',
        `agent '${request.agent}' has no instance that handles task '${request.task}'`,
        NOT_DISPATCHED,
      );
    case 'rate-limited':
      return new GatewayError('RATE_LIMITED', `too many calls for this ${pick.scope} across the cluster`, {
        ...NOT_DISPATCHED,
        retryAfterMs: pick.retryAfterMs,
        details: { scope: pick.scope },
      });
    case 'moving':
      return new GatewayError(
        'AGENT_UNAVAILABLE',
        `agent '${request.agent}' is moving to another replica (its replica is draining); retry shortly`,
        { ...NOT_DISPATCHED, retryAfterMs: 200 },
      );
    case 'unreachable':
      return new GatewayError(
        'AGENT_UNAVAILABLE',
        `the replicas holding agent '${request.agent}' are not reporting in (restarting, or gone); retry shortly`,
        { ...NOT_DISPATCHED, retryAfterMs: 500 },
      );
    case 'busy':
      return new GatewayError(
        'AGENT_UNAVAILABLE',
        `all ${pick.instances} instance(s) of agent '${request.agent}' are at their concurrency limit`,
        { ...NOT_DISPATCHED, retryAfterMs: 100 },
      );
  }
}

/** Options of an error raised before any agent received the task. */
const NOT_DISPATCHED = { dispatched: false } as const;

function asGatewayError(error: unknown): GatewayError {
  return error instanceof GatewayError ? error : new GatewayError('INTERNAL', 'internal error', { cause: error });
}
