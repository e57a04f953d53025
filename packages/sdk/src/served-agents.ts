import { AgentNameSchema, TaskCancelEventSchema, type TaskEvent, TaskEventSchema } from '@openclaw/protocol';
import { AgentHandle, type AgentOptions, type AgentTransport } from './agent-handle';
import { GatewayError, UnexpectedFrameError } from './errors';

/**
 * @internal The agents one client serves, by name: tasks from the gateway go to the agent that handles
 * them, cancellations to the agent running the task, and after a reconnection every agent that had
 * registered registers again.
 */
export class ServedAgents {
  private readonly handles = new Map<string, AgentHandle>();

  constructor(private readonly transport: AgentTransport) {}

  /**
   * A new agent. Throws a `TypeError` for a name the protocol does not allow, and an `Error` if this
   * client already has an agent of that name.
   */
  add(name: string, options: AgentOptions): AgentHandle {
    if (!AgentNameSchema.safeParse(name).success) {
      throw new TypeError(`agent name '${name}': expected ^[a-z0-9][a-z0-9._-]{0,62}$`);
    }
    if (this.handles.has(name)) throw new Error(`this client already has an agent named '${name}'`);
    const handle = new AgentHandle(name, options, this.transport);
    this.handles.set(name, handle);
    return handle;
  }

  /** Handles a `task` event: runs the task on the agent that handles it, or answers that none does. */
  onTask(frame: Record<string, unknown>, text: string): void {
    const parsed = TaskEventSchema.safeParse(frame);
    if (parsed.success) {
      this.dispatch(parsed.data);
      return;
    }
    this.transport.reportError(
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

  /** Handles a `task.cancel` event: aborts the task on the agent running it. */
  onCancel(frame: Record<string, unknown>, text: string): void {
    const parsed = TaskCancelEventSchema.safeParse(frame);
    if (!parsed.success) {
      this.transport.reportError(new UnexpectedFrameError('the gateway sent a malformed task.cancel event', text));
      return;
    }
    for (const handle of this.handles.values()) if (handle.cancel(parsed.data.taskId)) return;
  }

  /** The connection is lost: running tasks are aborted, and their replies will not go out on the next one. */
  detachAll(): void {
    const lost = new GatewayError('UNAVAILABLE', 'the connection to the gateway was lost', { retryable: true });
    for (const handle of this.handles.values()) handle.detach(lost);
  }

  /** Registers again every agent that had registered; only refusals a retry can fix fail the reconnection. */
  async reregister(): Promise<void> {
    const handles = [...this.handles.values()].filter((handle) => handle.wantsRegistration);
    const outcomes = await Promise.allSettled(handles.map((handle) => handle.reregister()));
    let retryable: unknown;
    outcomes.forEach((outcome, index) => {
      if (outcome.status === 'fulfilled') return;
      const error = outcome.reason;
      if (error instanceof GatewayError && error.retryable) {
        retryable ??= error;
        return;
      }
      this.transport.reportError(
        new GatewayError(
          error instanceof GatewayError ? error.code : 'INTERNAL',
          `agent '${handles[index]?.name}' could not be registered again: ${error instanceof Error ? error.message : String(error)}`,
          { retryable: false, cause: error },
        ),
      );
    });
    if (retryable !== undefined) throw retryable;
  }

  private dispatch(event: TaskEvent): void {
    // Every agent is a candidate, registered or not yet: ws emits the frames of one TCP read back to back,
    // so a task can arrive before the continuation of register() has marked the agent registered.
    const all = [...this.handles.values()];
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
      this.transport.sendReply(frame);
    } catch (error) {
      this.transport.reportError(error);
    }
  }
}
