import {
  type Authorizer,
  type BusTopics,
  GatewayError,
  isTerminal,
  type LedgerTask,
  type Logger,
  type Principal,
  principalDigest,
  type RedisKeys,
  type TaskLedger,
} from '@openclaw/core';
import type { ServerFrame, TaskState } from '@openclaw/protocol';
import type { Session } from './session';

/**
 * What a `task.subscribe` watch delivers to: a client's connection, or a listener in this process
 * (an A2A event stream, see {@link TaskEventRouter.follow}).
 */
export interface TaskWatcher {
  readonly principal: Principal;
  readonly open: boolean;
  subscriptions: number;
  send(frame: ServerFrame): void;
}

/** A task's events as {@link TaskEventRouter.follow} hands them over: `task.status` and `task.progress` frames. */
export type TaskEventListener = (frame: Record<string, unknown>) => void;

/** A `task.subscribe` watch: the last event delivered, and live events held back during a replay. */
interface Watch {
  cursor: string | undefined;
  /** Live events that came while the replay was read; undefined once live. */
  buffer: Record<string, unknown>[] | undefined;
  /** Whether the watcher is another principal than the submitter (it listens on the task channel). */
  viaTaskChannel: boolean;
}

interface PrincipalChannel {
  sessions: Set<Session>;
}

/**
 * Delivers async task events to clients on this replica. Events are published once per change (by
 * the ledger's scripts, on topics of the cluster bus) to the submitter's channel, the task's channel once someone else
 * watches it and, for tasks that need a human, the tenant's operator channel; this replica
 * subscribes only to the channels of the principals, tasks and tenants it has sessions for.
 *
 * Who receives what:
 * - every connection of the submitting principal that is not an agent instance, wherever it is
 *   attached (so a submitter that reconnected to another replica still gets its events);
 * - every connection that watches the task with `task.subscribe` (replayed after a cursor first);
 * - connections of operators (`task:respond`) of the tenant, for tasks waiting for a human;
 * - connections of principals with `approval:read`, for approvals asked for and changed;
 * - connections that sent `tasks.watch` (dashboards), for every status change of the tenant's tasks,
 *   without outputs, and then not again through the other routes.
 * Pub/sub is at most once: events missed during a disconnection are replayed from the task's stream
 * by `task.subscribe` with `after` (the SDK does this by itself after reconnecting).
 */
export class TaskEventRouter {
  private readonly principals = new Map<string, PrincipalChannel>();
  private readonly taskWatchers = new Map<string, Set<TaskWatcher>>();
  /** The listeners {@link follow} added, replayed with the connections after a lost subscription. */
  private readonly followers = new Set<TaskWatcher>();
  /** How many tasks each principal follows on this replica (tenant and id, NUL-joined). */
  private readonly followed = new Map<string, number>();
  private readonly operators = new Map<string, Set<Session>>();
  /** `tasks.watch` connections by their tenant's activity channel. */
  private readonly activity = new Map<string, Set<Session>>();
  private readonly watchingAll = new WeakSet<Session>();
  private readonly watches = new WeakMap<TaskWatcher, Map<string, Watch>>();

  private readonly onMessage = (channel: string, raw: string): void => {
    const everyTask = this.activity.get(channel);
    if (everyTask) {
      this.deliverActivity(everyTask, raw);
      return;
    }
    const principal = this.principals.get(channel);
    const watchers = principal ? undefined : this.taskWatchers.get(channel);
    const operators = principal || watchers ? undefined : this.operators.get(channel);
    if (!principal && !watchers && !operators) return;
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return;
    }
    if (operators && typeof frame.approvalId === 'string') {
      // An approval asked for or changed: to the tenant's principals that may see approvals.
      for (const session of operators) {
        if (session.instances.size > 0) continue;
        if (this.authorizer.can(session.principal, 'approval:read')) session.send(frame as ServerFrame);
      }
      return;
    }
    const taskId = frame.taskId;
    if (typeof taskId !== 'string') return;
    if (principal) {
      for (const session of principal.sessions) {
        const watch = this.watches.get(session)?.get(taskId);
        if (watch) this.deliverWatched(session, taskId, watch, frame);
        // As published: the frame is not changed on this route.
        else if (session.instances.size === 0 && !this.seesAll(session, frame)) session.sendJson(raw);
      }
    } else if (watchers) {
      for (const session of watchers) {
        const watch = this.watches.get(session)?.get(taskId);
        if (watch?.viaTaskChannel) this.deliverWatched(session, taskId, watch, frame);
      }
    } else if (operators) {
      for (const session of operators) {
        // The submitter's own connections have it from their channel already.
        if (session.principal.id === frame.submittedBy) continue;
        if (session.instances.size > 0 || this.watches.get(session)?.has(taskId) || this.seesAll(session, frame))
          continue;
        if (this.authorizer.can(session.principal, 'task:respond')) session.send(frame as ServerFrame);
      }
    }
  };

  constructor(
    private readonly topics: BusTopics,
    private readonly keys: RedisKeys,
    private readonly ledger: TaskLedger,
    private readonly authorizer: Authorizer,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.topics.onMessage(this.onMessage);
  }

  stop(): void {
    this.topics.offMessage(this.onMessage);
  }

  /**
   * Before a connection opens: resolves once this replica listens to the principal's task events,
   * so that no event of a task submitted on the new connection can come before the subscription
   * (a first subscription of the process may take a round trip more, on Redis Cluster). Never
   * rejects: a connection opens anyway, and its client reads missed events from the task's stream.
   */
  async prepare(principal: Principal): Promise<void> {
    const channel = this.keys.principalEvents(principalDigest(principal.tenant, principal.id));
    if (this.principals.has(channel)) return;
    await this.topics.listen(channel).catch(() => undefined);
  }

  /** A new connection: listen for its principal's task events and its tenant's operator notices. */
  attach(session: Session): void {
    const channel = this.principalChannel(session);
    let entry = this.principals.get(channel);
    if (!entry) {
      entry = { sessions: new Set() };
      this.principals.set(channel, entry);
      this.subscribe(channel);
    }
    entry.sessions.add(session);
    const ops = this.keys.operatorEvents(session.principal.tenant);
    let operators = this.operators.get(ops);
    if (!operators) {
      operators = new Set();
      this.operators.set(ops, operators);
      this.subscribe(ops);
    }
    operators.add(session);
  }

  /** A connection closed: stop listening for what only it needed. */
  detach(session: Session): void {
    const channel = this.principalChannel(session);
    const entry = this.principals.get(channel);
    if (entry?.sessions.delete(session) && entry.sessions.size === 0) {
      this.principals.delete(channel);
      this.unsubscribe(channel);
    }
    const ops = this.keys.operatorEvents(session.principal.tenant);
    const operators = this.operators.get(ops);
    if (operators?.delete(session) && operators.size === 0) {
      this.operators.delete(ops);
      this.unsubscribe(ops);
    }
    for (const taskId of this.watches.get(session)?.keys() ?? []) this.unwatch(session, taskId);
    this.watches.delete(session);
    this.unwatchAll(session);
  }

  /**
   * `tasks.watch`: from now on the connection gets every status change of its tenant's async tasks
   * (workflow steps included), without outputs. Resolves once the subscription is in place.
   */
  async watchAll(session: Session): Promise<void> {
    if (this.watchingAll.has(session) || !session.open) return;
    this.watchingAll.add(session);
    const channel = this.keys.taskActivity(session.principal.tenant);
    let sessions = this.activity.get(channel);
    if (!sessions) {
      sessions = new Set();
      this.activity.set(channel, sessions);
      sessions.add(session);
      try {
        await this.topics.listen(channel);
      } catch {
        this.unwatchAll(session);
        throw new GatewayError('UNAVAILABLE', 'could not subscribe to task activity: Redis is unreachable');
      }
    } else sessions.add(session);
  }

  /** @returns whether the connection was watching every task. */
  unwatchAll(session: Session): boolean {
    if (!this.watchingAll.delete(session)) return false;
    const channel = this.keys.taskActivity(session.principal.tenant);
    const sessions = this.activity.get(channel);
    if (sessions?.delete(session) && sessions.size === 0) {
      this.activity.delete(channel);
      this.unsubscribe(channel);
    }
    return true;
  }

  /** How many watches a connection holds. */
  watchCount(session: Session): number {
    return this.watches.get(session)?.size ?? 0;
  }

  /**
   * Watches a task for a connection: replays the events after `after` (if given), then streams live
   * ones until the task ends. Without `after`, a task that has already ended gets its final status.
   * The watch is in place when this returns (live events are held back from then on, so none is
   * lost or sent twice); what it sends goes out on a later turn of the event loop, after the
   * response to `task.subscribe`.
   */
  async watch(
    session: TaskWatcher,
    task: LedgerTask,
    after: string | undefined,
    viaTaskChannel = task.principal !== session.principal.id,
  ): Promise<void> {
    // A connection that closed while its request was handled was detached already: a watch added now
    // would never be removed.
    if (!session.open) return;
    let watches = this.watches.get(session);
    if (!watches) {
      watches = new Map();
      this.watches.set(session, watches);
    }
    const existing = watches.get(task.taskId);
    if (existing) this.unwatch(session, task.taskId);
    const watch: Watch = { cursor: after, buffer: [], viaTaskChannel };
    watches.set(task.taskId, watch);
    session.subscriptions += 1;
    let subscribed: Promise<unknown> = Promise.resolve();
    if (viaTaskChannel) {
      const channel = this.keys.taskChannel(task.taskId);
      let watchers = this.taskWatchers.get(channel);
      if (!watchers) {
        watchers = new Set();
        this.taskWatchers.set(channel, watchers);
        subscribed = this.topics.listen(channel).catch(() => undefined);
      }
      watchers.add(session);
    }
    try {
      await subscribed;
      // Events are published on the task's channel only once it is marked watched: after the
      // subscription, before the replay, so that no event falls between the two.
      if (viaTaskChannel) await this.ledger.markWatched(task.taskId).catch(() => undefined);
      await new Promise((resolve) => setImmediate(resolve));
      if (after !== undefined) {
        for (const event of await this.ledger.events(task.taskId, after)) {
          this.sendWatched(session, task.taskId, watch, event.frame);
        }
      } else if (isTerminal(task.status)) {
        this.sendWatched(session, task.taskId, watch, finalFrame(task));
      } else if (viaTaskChannel) {
        // An end published before the task was marked watched went to the submitter only.
        const latest = await this.ledger.get(task.taskId).catch(() => undefined);
        if (latest && isTerminal(latest.status)) this.sendWatched(session, task.taskId, watch, finalFrame(latest));
      }
    } finally {
      const buffered = watch.buffer ?? [];
      watch.buffer = undefined;
      for (const frame of buffered) this.deliverWatched(session, task.taskId, watch, frame);
    }
  }

  /**
   * Follows a task for a listener in this process, on whichever replica the task runs: replays its
   * events after `after` (every kept event with `'0-0'`), then hands over live ones until the task
   * ends. Without `after`, a task that has ended gets its final status. Events come through the
   * task's own channel, so a listener of any principal gets them.
   * @returns a function that stops following (called by itself once the task has ended).
   */
  async follow(
    principal: Principal,
    task: LedgerTask,
    after: string | undefined,
    listener: TaskEventListener,
  ): Promise<() => void> {
    const who = `${principal.tenant}\u0000${principal.id}`;
    const count = this.followed.get(who) ?? 0;
    if (count >= MAX_FOLLOWED_PER_PRINCIPAL) {
      throw new GatewayError(
        'RATE_LIMITED',
        `at most ${MAX_FOLLOWED_PER_PRINCIPAL} task streams and waits may be open per principal on a replica`,
        { retryAfterMs: 1000 },
      );
    }
    this.followed.set(who, count + 1);
    const follower: TaskWatcher = {
      principal,
      open: true,
      subscriptions: 0,
      send: (frame) => listener(frame as unknown as Record<string, unknown>),
    };
    this.followers.add(follower);
    const stop = (): void => {
      if (!follower.open) return;
      (follower as { open: boolean }).open = false;
      this.followers.delete(follower);
      const left = (this.followed.get(who) ?? 1) - 1;
      if (left > 0) this.followed.set(who, left);
      else this.followed.delete(who);
      this.unwatch(follower, task.taskId);
    };
    try {
      await this.watch(follower, task, after, true);
    } catch (error) {
      stop();
      throw error;
    }
    // Ended already (its last event was replayed): nothing more will come.
    if (!this.watches.get(follower)?.has(task.taskId)) stop();
    return stop;
  }

  /**
   * After the subscriber lost Redis and came back: events published meanwhile were lost for live
   * delivery, so every watch is replayed from its cursor.
   */
  async resync(sessions: Iterable<TaskWatcher>): Promise<void> {
    // The subscription may have been lost without ioredis knowing to restore it: subscribe again
    // (a no-op for channels that are still subscribed).
    const channels = [
      ...this.principals.keys(),
      ...this.taskWatchers.keys(),
      ...this.operators.keys(),
      ...this.activity.keys(),
    ];
    await this.topics.listen(...channels).catch(() => undefined);
    for (const session of [...sessions, ...this.followers]) {
      for (const [taskId, watch] of this.watches.get(session) ?? []) {
        if (watch.cursor === undefined) continue;
        const events = await this.ledger.events(taskId, watch.cursor).catch(() => []);
        for (const event of events) this.deliverWatched(session, taskId, watch, event.frame);
      }
    }
  }

  /** A status change from a tenant's activity channel, to its `tasks.watch` connections. */
  private deliverActivity(sessions: Set<Session>, raw: string): void {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof frame.taskId !== 'string' || frame.event !== 'task.status') return;
    // Outputs can be large and a dashboard shows them on demand (`task.get`).
    delete frame.output;
    for (const session of sessions) {
      // A `task.subscribe` watch of the same task delivers it, in order with the replay.
      if (this.watches.get(session)?.has(frame.taskId)) continue;
      session.send(frame as ServerFrame);
    }
  }

  /** Whether the connection gets this frame from its tenant's activity channel already. */
  private seesAll(session: Session, frame: Record<string, unknown>): boolean {
    return frame.event === 'task.status' && this.watchingAll.has(session);
  }

  private deliverWatched(session: TaskWatcher, taskId: string, watch: Watch, frame: Record<string, unknown>): void {
    if (watch.buffer) {
      watch.buffer.push(frame);
      return;
    }
    if (watch.cursor !== undefined && typeof frame.cursor === 'string' && !after(frame.cursor, watch.cursor)) return;
    this.sendWatched(session, taskId, watch, frame);
  }

  private sendWatched(session: TaskWatcher, taskId: string, watch: Watch, frame: Record<string, unknown>): void {
    if (typeof frame.cursor === 'string') watch.cursor = frame.cursor;
    session.send(frame as ServerFrame);
    if (frame.event === 'task.status' && isTerminal(frame.status as TaskState)) this.unwatch(session, taskId);
  }

  private unwatch(session: TaskWatcher, taskId: string): void {
    const watches = this.watches.get(session);
    const watch = watches?.get(taskId);
    if (!watches || !watch) return;
    watches.delete(taskId);
    session.subscriptions -= 1;

    if (watch.viaTaskChannel) {
      const channel = this.keys.taskChannel(taskId);
      const watchers = this.taskWatchers.get(channel);
      if (watchers?.delete(session) && watchers.size === 0) {
        this.taskWatchers.delete(channel);
        this.unsubscribe(channel);
      }
    }
  }

  private principalChannel(session: Session): string {
    return this.keys.principalEvents(principalDigest(session.principal.tenant, session.principal.id));
  }

  private subscribe(channel: string): void {
    this.topics.listen(channel).catch((error: unknown) => {
      this.logger.warn({ err: error, channel }, 'could not subscribe to task events');
    });
  }

  private unsubscribe(channel: string): void {
    this.topics.stop(channel);
  }
}

/** How many tasks one principal may follow at once on a replica (A2A streams, waits for a task's end). */
export const MAX_FOLLOWED_PER_PRINCIPAL = 100;

/** Whether stream id `a` comes after `b`. */
function after(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}

/** The final `task.status` of a task that has ended, from its record. */
function finalFrame(task: LedgerTask): Record<string, unknown> {
  const frame: Record<string, unknown> = { event: 'task.status', taskId: task.taskId, status: task.status };
  if (task.output !== undefined) frame.output = task.output;
  if (task.error !== undefined) frame.error = task.error;
  return frame;
}
