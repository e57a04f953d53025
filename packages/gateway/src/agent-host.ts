import { randomUUID } from 'node:crypto';
import {
  type AgentRegistry,
  type ClusterBus,
  GatewayError,
  inSpan,
  type Logger,
  qualifiedAgent,
  type TaskAbortMessage,
  type TaskDispatchMessage,
  type TaskReplyMessage,
  TIMINGS,
  traceparentOf,
  tracingActive,
} from '@openclaw/core';
import type { ActionParams } from '@openclaw/protocol';
import { SpanKind } from '@opentelemetry/api';
import type { Session } from './session';

/** How often an answer the bus could not publish is sent again. */
const REPLY_RETRY_MS = 250;
/**
 * How long an answer the bus could not publish (or that reached no one) is sent again at most: longer
 * than a Redis Cluster failover (3 to 5 s measured with a node timeout of 2 s, 6 to 8 s with 5 s),
 * shorter than the lock a worker holds on its job (30 s).
 */
const REPLY_RETRY_FOR_MS = TIMINGS.replyRetryMs;

/** One agent's instances attached to this replica (`GET /status`). */
export interface LocalAgentStatus {
  name: string;
  tenant: string;
  instances: number;
  openTasks: number;
}

interface LocalInstance {
  instanceId: string;
  agent: string;
  session: Session;
  /** Most tasks it holds at once: a dispatch beyond it is refused as busy. */
  concurrency: number;
  /** Tasks sent to this instance and not answered: task id to origin replica. */
  openTasks: Map<string, { origin: string; traceparent: string; agents: string[]; deadline: number }>;
}

/**
 * How long past its deadline a task keeps its place on an instance when its origin never said it
 * ended (the origin died): then the place is free again, and the agent told to stop.
 */
const EXPIRED_TASK_GRACE_MS = 1000;

/** Most instances one connection may register. */
export const MAX_INSTANCES_PER_SESSION = 32;

/**
 * The holder side of routing: the agent instances attached to this replica. Receives dispatched
 * tasks (from the bus, including from this replica), writes them to the agent's socket, and sends
 * the agent's replies back to the origin replica. When an agent's socket closes, every task it held
 * fails at once at its origin, so the caller does not wait for the deadline.
 */
export class AgentHost {
  private readonly instances = new Map<string, LocalInstance>();

  constructor(
    private readonly bus: ClusterBus,
    private readonly registry: AgentRegistry,
    private readonly logger: Logger,
  ) {}

  /** Number of agent instances attached here. */
  get size(): number {
    return this.instances.size;
  }

  /** Tasks sent to this replica's agents and not answered yet. */
  get openTasks(): number {
    let n = 0;
    for (const instance of this.instances.values()) n += instance.openTasks.size;
    return n;
  }

  /**
   * Takes every local instance out of the registry (drain): no new task is routed here, while the
   * agents stay connected to answer the tasks they hold. Their agents are marked as moving for
   * `movingMs`, the time they have to register again on another replica.
   */
  async withdraw(movingMs: number): Promise<void> {
    // Callers meanwhile hear that the agents are moving, not that they do not exist.
    await this.registry.markMoving(movingMs).catch(() => undefined);
    await Promise.allSettled([...this.instances.keys()].map((id) => this.registry.unregisterInstance(id)));
  }

  /** Tasks held by the agent instances of one connection. */
  openTasksOf(session: Session): number {
    let n = 0;
    for (const instance of this.instances.values()) if (instance.session === session) n += instance.openTasks.size;
    return n;
  }

  /** Local agents (every tenant's, or one tenant's) and how many instances each has here. */
  localAgents(tenant?: string): LocalAgentStatus[] {
    const byName = new Map<string, LocalAgentStatus>();
    for (const i of this.instances.values()) {
      const own = i.session.principal.tenant;
      if (tenant !== undefined && own !== tenant) continue;
      const key = qualifiedAgent(own, i.agent);
      const entry = byName.get(key) ?? { name: i.agent, tenant: own, instances: 0, openTasks: 0 };
      entry.instances += 1;
      entry.openTasks += i.openTasks.size;
      byName.set(key, entry);
    }
    return [...byName.values()].sort((a, b) => a.tenant.localeCompare(b.tenant) || a.name.localeCompare(b.name));
  }

  /** Makes a session an instance of an agent. */
  async register(session: Session, params: ActionParams<'register'>): Promise<{ agent: string; instanceId: string }> {
    for (const agent of session.instances.values()) {
      if (agent === params.name) {
        throw new GatewayError('CONFLICT', `this connection is already an instance of '${params.name}'`);
      }
    }
    if (session.instances.size >= MAX_INSTANCES_PER_SESSION) {
      throw new GatewayError('CONFLICT', `one connection may register at most ${MAX_INSTANCES_PER_SESSION} agents`);
    }
    const instanceId = randomUUID();
    const instance: LocalInstance = {
      instanceId,
      agent: params.name,
      session,
      concurrency: params.concurrency ?? 1,
      openTasks: new Map(),
    };
    this.instances.set(instanceId, instance);
    session.instances.set(instanceId, params.name);
    try {
      await this.registry.registerInstance({
        instanceId,
        // Registered in the tenant of the connection's principal: another tenant's agent of the
        // same name is a different agent.
        agent: qualifiedAgent(session.principal.tenant, params.name),
        tasks: params.tasks ?? [],
        concurrency: params.concurrency ?? 1,
        meta: params.meta,
        principal: session.principal.id,
      });
    } catch (error) {
      this.instances.delete(instanceId);
      session.instances.delete(instanceId);
      await this.registry.unregisterInstance(instanceId).catch(() => undefined);
      throw error;
    }
    if (!session.open) {
      // The socket closed while Redis was being written: do not leave a ghost instance.
      await this.detach(session);
    }
    return { agent: params.name, instanceId };
  }

  /** A task arrived for one of our instances. */
  handleDispatch(message: TaskDispatchMessage): void {
    const instance = this.instances.get(message.instanceId);
    if (!instance?.session.open) {
      // The origin routes it again, from a fresh copy of the registry.
      this.refuse(message, 'gone');
      return;
    }
    // A new attempt of a task takes over its earlier attempt's place.
    if (!instance.openTasks.has(message.taskId) && this.full(instance)) {
      this.refuse(message, 'busy');
      return;
    }
    // In the dispatch's trace (the bus consumer span): the agent may continue it with its own spans.
    const traceparent = traceparentOf() ?? message.traceparent;
    instance.openTasks.set(message.taskId, {
      origin: message.sender,
      traceparent,
      agents: message.from.agents ?? [],
      deadline: message.deadline,
    });
    this.registry.reportLoad(instance.instanceId, instance.openTasks.size);
    instance.session.send({
      event: 'task',
      // Only when the cluster traces (docs/protocol.md): otherwise the id names no trace anyone can see.
      ...(tracingActive() ? { traceparent } : {}),
      taskId: message.taskId,
      // Which of the connection's agents is asked (one connection may serve several).
      agent: instance.agent,
      task: message.task,
      data: message.data,
      from: message.from,
      deadline: message.deadline,
      attempt: message.attempt,
      thread: message.thread,
    });
  }

  /** The origin stopped waiting (cancel or deadline): tell the agent, forget the task. */
  handleAbort(message: TaskAbortMessage): void {
    const instance = this.instances.get(message.instanceId);
    if (!instance?.openTasks.delete(message.taskId)) return;
    this.registry.reportLoad(instance.instanceId, instance.openTasks.size);
    instance.session.send({ event: 'task.cancel', taskId: message.taskId });
  }

  /**
   * Whether an instance holds as many tasks as its concurrency. Tasks well past their deadline
   * whose origin never said they ended (it died) are let go first, their agent told to stop.
   */
  private full(instance: LocalInstance): boolean {
    if (instance.openTasks.size < instance.concurrency) return false;
    const expired = Date.now() - EXPIRED_TASK_GRACE_MS;
    for (const [taskId, open] of instance.openTasks) {
      if (open.deadline >= expired) continue;
      instance.openTasks.delete(taskId);
      instance.session.send({ event: 'task.cancel', taskId });
    }
    return instance.openTasks.size >= instance.concurrency;
  }

  /** Tells the origin that a task was not given to the agent, so it may route it elsewhere. */
  private refuse(message: TaskDispatchMessage, reason: 'busy' | 'gone'): void {
    this.reply(message.sender, message.taskId, message.instanceId, message.traceparent, { kind: 'refused', reason });
  }

  /**
   * An agent answered (`task.result`, `task.error`, `task.progress`).
   * @throws {GatewayError} `NOT_FOUND` if this connection holds no such task.
   */
  handleAgentReply(
    session: Session,
    action: 'task.result' | 'task.error' | 'task.progress',
    params: ActionParams<'task.result'> | ActionParams<'task.error'> | ActionParams<'task.progress'>,
    /** Throws if the connection may no longer answer as this agent (the policy changed). */
    authorize: (agent: string) => void = () => undefined,
  ): { taskId: string } {
    const found = this.findOpenTask(session, params.taskId);
    if (!found) {
      throw new GatewayError(
        'NOT_FOUND',
        `this connection holds no open task '${params.taskId}' (it may have been canceled or timed out)`,
      );
    }
    const { instance, origin, traceparent, deadline } = found;
    authorize(instance.agent);
    let outcome: TaskReplyMessage['outcome'];
    if (action === 'task.progress') {
      outcome = { kind: 'progress', progress: (params as ActionParams<'task.progress'>).progress };
    } else {
      instance.openTasks.delete(params.taskId);
      this.registry.reportLoad(instance.instanceId, instance.openTasks.size);
      outcome =
        action === 'task.result'
          ? { kind: 'result', output: (params as ActionParams<'task.result'>).output ?? null }
          : { kind: 'agent-error', error: (params as ActionParams<'task.error'>).error };
    }
    inSpan(
      `agent ${action}`,
      { kind: SpanKind.SERVER, parent: traceparent, attributes: { 'openclaw.agent': instance.agent } },
      () => this.reply(origin, params.taskId, instance.instanceId, traceparentOf() ?? traceparent, outcome, deadline),
    );
    return { taskId: params.taskId };
  }

  /** A session closed: fail its open tasks at their origins and remove its instances. */
  async detach(session: Session): Promise<void> {
    const removals: Promise<void>[] = [];
    for (const instanceId of session.instances.keys()) {
      const instance = this.instances.get(instanceId);
      this.instances.delete(instanceId);
      if (instance) {
        for (const [taskId, { origin, traceparent, deadline }] of instance.openTasks) {
          this.reply(
            origin,
            taskId,
            instanceId,
            traceparent,
            {
              kind: 'failure',
              error: new GatewayError(
                'AGENT_UNAVAILABLE',
                `agent '${instance.agent}' disconnected before answering`,
              ).toWire(),
            },
            deadline,
          );
        }
        instance.openTasks.clear();
      }
      removals.push(this.registry.unregisterInstance(instanceId).catch(() => undefined));
    }
    session.instances.clear();
    await Promise.all(removals);
  }

  /**
   * The agents a call made by this connection comes through, for loop detection: the chain of the
   * task it works on (`parentTaskId`, or the only task it holds), then its own agent. Undefined for a
   * connection that is no agent.
   */
  chainFor(session: Session, parentTaskId?: string): string[] | undefined {
    if (session.instances.size === 0) return undefined;
    let parent = parentTaskId === undefined ? undefined : this.findOpenTask(session, parentTaskId);
    if (!parent && parentTaskId === undefined) {
      const open = [...session.instances.keys()].flatMap((id) => {
        const instance = this.instances.get(id);
        return instance ? [...instance.openTasks.entries()].map(([, task]) => ({ instance, ...task })) : [];
      });
      if (open.length === 1) parent = open[0];
    }
    if (parent) return [...parent.agents, parent.instance.agent];
    return [session.instances.values().next().value as string];
  }

  private findOpenTask(session: Session, taskId: string) {
    for (const instanceId of session.instances.keys()) {
      const instance = this.instances.get(instanceId);
      const open = instance?.openTasks.get(taskId);
      if (instance && open) return { instance, ...open };
    }
    return undefined;
  }

  /**
   * Sends a task's outcome to its origin. An answer exists only here once the agent has sent it: when
   * the bus cannot publish (Redis down, or a Redis Cluster master failing over), or the answer reached
   * no one (the origin subscribing again), it is sent again every {@link REPLY_RETRY_MS} until the
   * task's deadline, for at most {@link REPLY_RETRY_FOR_MS}. A copy that did arrive before an error is
   * harmless: the origin settles a task once. Progress is not sent again.
   */
  private reply(
    origin: string,
    taskId: string,
    instanceId: string,
    traceparent: string,
    outcome: TaskReplyMessage['outcome'],
    until = Number.POSITIVE_INFINITY,
  ): void {
    const giveUpAt = Math.min(until, Date.now() + REPLY_RETRY_FOR_MS);
    const send = (): void => {
      this.bus.send(origin, { type: 'task.reply', taskId, instanceId, outcome, traceparent }).then(
        (receivers) => {
          if (receivers > 0) return;
          if (outcome.kind !== 'progress' && Date.now() + REPLY_RETRY_MS < giveUpAt) {
            setTimeout(send, REPLY_RETRY_MS).unref();
            return;
          }
          this.logger.debug({ taskId, origin }, 'reply dropped: the origin replica (or worker) is gone');
        },
        (error: unknown) => {
          if (outcome.kind !== 'progress' && Date.now() + REPLY_RETRY_MS < giveUpAt) {
            setTimeout(send, REPLY_RETRY_MS).unref();
            return;
          }
          this.logger.warn({ err: error, taskId }, 'could not send a reply to the origin replica');
        },
      );
    };
    send();
  }
}
