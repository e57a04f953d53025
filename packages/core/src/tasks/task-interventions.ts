import { GatewayError, type TaskState, type WorkflowDefinition } from '@openclaw/protocol';
import type { ClusterBus } from '../bus/cluster-bus';
import { TIMINGS } from '../config/timings';
import type { Logger } from '../telemetry/logger';
import type { AsyncTaskDefaults } from './async-task-defaults';
import { enqueueOptions, isTerminal, type LedgerTask } from './ledger-record';
import type { TaskLedger } from './task-ledger';
import { stillHeld, type TaskQueue } from './task-queue';
import { type TaskViewer, visibleTask } from './task-viewer';

/** What {@link TaskInterventions} acts through. */
export interface TaskInterventionsOptions {
  ledger: TaskLedger;
  queue: TaskQueue;
  /** Tells the worker running a task to stop it. */
  bus: ClusterBus;
  logger: Logger;
  /** The deadline a retried workflow gets when its definition gives none. */
  defaults: Pick<AsyncTaskDefaults, 'workflowDeadlineMs'>;
}

/**
 * What is done to an async task from outside its run, from any replica: cancel it (and a workflow's
 * steps), answer it while it waits for a human, and run it again once it has failed or been canceled.
 */
export class TaskInterventions {
  private readonly ledger: TaskLedger;
  private readonly queue: TaskQueue;
  private readonly bus: ClusterBus;
  private readonly logger: Logger;
  private readonly defaults: Pick<AsyncTaskDefaults, 'workflowDeadlineMs'>;

  constructor(options: TaskInterventionsOptions) {
    this.ledger = options.ledger;
    this.queue = options.queue;
    this.bus = options.bus;
    this.logger = options.logger;
    this.defaults = options.defaults;
  }

  /** Cancels a workflow's steps that have not ended (best effort; each is canceled as `cancel` does). */
  async cancelSteps(taskIds: readonly string[]): Promise<void> {
    const children = await this.ledger.getMany(taskIds);
    await Promise.all(
      children
        .filter((child) => !isTerminal(child.status))
        .map((child) =>
          this.cancel(child.taskId, { principal: child.principal, tenant: child.tenant, any: true }).catch((error) =>
            this.logger.warn({ err: error, taskId: child.taskId }, 'could not cancel a workflow step'),
          ),
        ),
    );
  }

  /**
   * Cancels an async task: a queued or parked job is removed at once; a running one is stopped by
   * its worker (the agent receives `task.cancel`). A workflow's running steps are canceled too.
   * @throws {GatewayError} `NOT_FOUND`, or `CONFLICT` when it has already ended.
   */
  async cancel(taskId: string, viewer: TaskViewer): Promise<TaskState> {
    const task = await visibleTask(this.ledger, taskId, viewer);
    if (isTerminal(task.status)) {
      throw new GatewayError('CONFLICT', `task '${taskId}' has already ended (${task.status})`);
    }
    await this.ledger.setFields(taskId, { cancelRequested: '1' });
    if (task.kind === 'workflow') await this.cancelChildren(task);
    const end = Date.now() + TIMINGS.cancelConfirmMs;
    let told = false;
    for (;;) {
      const state = await this.queue.state(taskId);
      // Not running: take it off the queue and end it here (unless its worker ended it meanwhile
      // and it was retried: the job removed was then the retry's, which runs again when its
      // request is gone, as below).
      if (state !== 'active' && (state === 'missing' || (await this.queue.remove(taskId)))) {
        if (!(await this.finishCanceled(task, viewer.principal))) await this.requeueRetried(task);
        return 'canceled';
      }
      if (state === 'active' && !told) {
        // A worker holds it: tell that worker (its agent gets task.cancel). A dead worker's job comes
        // back as stalled and ends as canceled when picked up.
        told = true;
        const current = await this.ledger.get(taskId);
        if (current?.worker)
          await this.bus.send(current.worker, { type: 'task.cancel-request', taskId }).catch(() => 0);
      }
      if (task.kind === 'workflow') await this.queue.wake(taskId);
      const now = await this.ledger.get(taskId);
      if (now && isTerminal(now.status) && now.status !== 'canceled') {
        throw new GatewayError('CONFLICT', `task '${taskId}' ended (${now.status}) before it could be canceled`);
      }
      // Canceled; or canceled and already retried (a retry clears the request).
      if (!now || now.status === 'canceled' || !now.cancelRequested) return 'canceled';
      if (Date.now() >= end) return 'canceled';
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * An operator's answer to a task in `input-required`: it becomes the task's output (or the
   * escalated step's), and the task's job runs again at once to carry on.
   * @throws {GatewayError} `NOT_FOUND`, or `CONFLICT` when the task is not waiting for input.
   */
  async respond(taskId: string, output: unknown, viewer: TaskViewer): Promise<void> {
    const task = await visibleTask(this.ledger, taskId, viewer);
    if (task.status !== 'input-required') {
      throw new GatewayError('CONFLICT', `task '${taskId}' is not waiting for input (${task.status})`);
    }
    if (task.approvalId !== undefined) {
      throw new GatewayError(
        'CONFLICT',
        `task '${taskId}' waits for approval '${task.approvalId}': decide it with approval.decide (openclaw approvals approve|reject)`,
        { details: { approvalId: task.approvalId } },
      );
    }
    // A workflow that waits because one of its steps does: the answer is for that step.
    const waitingStep = (task.question as { taskIds?: string[] } | undefined)?.taskIds?.[0];
    if (task.kind === 'workflow' && waitingStep !== undefined) {
      return this.respond(waitingStep, output, { ...viewer, any: true });
    }
    const response = JSON.stringify({ output: output ?? null, by: viewer.principal, at: Date.now() });
    const result = await this.ledger.transition(task, {
      status: 'working',
      from: ['input-required'],
      fields: { response },
      event: { respondedBy: viewer.principal },
    });
    if (!result.applied) {
      throw new GatewayError('CONFLICT', `task '${taskId}' is no longer waiting for input (${result.previous})`);
    }
    if (!(await this.queue.wake(taskId))) {
      const state = await this.queue.state(taskId);
      if (state === 'missing' || state === 'failed' || state === 'completed')
        await this.queue.requeue(taskId, enqueueOptions(task));
    }
  }

  /**
   * Runs a failed or canceled task again from its first attempt (a workflow from its first step).
   * @throws {GatewayError} `NOT_FOUND`, or `CONFLICT` when the task has not failed or been canceled.
   */
  async retry(taskId: string, viewer: TaskViewer): Promise<void> {
    const task = await visibleTask(this.ledger, taskId, viewer);
    if (task.status !== 'failed' && task.status !== 'canceled') {
      throw new GatewayError('CONFLICT', `only failed or canceled tasks can be retried; '${taskId}' is ${task.status}`);
    }
    // The worker that ended the last run lets go of its job a moment later; a job it still holds
    // would be ended with that run, taking this one with it.
    if ((await this.queue.released(taskId, TIMINGS.retryReleaseWaitMs)) === 'active') throw stillHeld(taskId);
    const fields: Record<string, string | undefined> = {
      attempts: '0',
      error: undefined,
      output: undefined,
      lastError: undefined,
      endedAt: undefined,
      cancelRequested: undefined,
      response: undefined,
      question: undefined,
      escalateUntil: undefined,
      waiting: undefined,
      // A retry is a new run: its message needs a new approval if the policy asks for one.
      approvalId: undefined,
      worker: undefined,
      retriedBy: viewer.principal,
    };
    if (task.kind === 'workflow') {
      fields.state = undefined;
      const deadlineMs = (task.definition as WorkflowDefinition).deadlineMs ?? this.defaults.workflowDeadlineMs;
      fields.deadline = String(Date.now() + deadlineMs);
    }
    const result = await this.ledger.transition(task, {
      status: 'submitted',
      from: ['failed', 'canceled'],
      fields,
      event: { retriedBy: viewer.principal },
    });
    if (!result.applied) throw new GatewayError('CONFLICT', `task '${taskId}' changed meanwhile (${result.previous})`);
    await this.queue.requeue(taskId, enqueueOptions(task));
  }

  private cancelChildren(parent: LedgerTask): Promise<void> {
    return this.cancelSteps(childrenOf(parent));
  }

  /** Ends a task whose cancel is still requested. @returns whether it did. */
  private async finishCanceled(task: LedgerTask, by: string): Promise<boolean> {
    const error = new GatewayError('CANCELED', 'the task was canceled').toWire();
    const result = await this.ledger.transition(task, {
      status: 'canceled',
      whileField: { name: 'cancelRequested', value: '1' },
      fields: { error: JSON.stringify(error), endedAt: String(Date.now()), canceledBy: by },
      event: { error },
    });
    if (task.parentId !== undefined) await this.queue.wake(task.parentId);
    return result.applied;
  }

  /** Queues again a task that was retried while its cancel was being confirmed. */
  private async requeueRetried(task: LedgerTask): Promise<void> {
    const now = await this.ledger.get(task.taskId);
    if (now && !isTerminal(now.status) && !now.cancelRequested)
      await this.queue.requeue(task.taskId, enqueueOptions(now));
  }
}

/** The ids of a workflow's child tasks, from its run state. */
export function childrenOf(task: LedgerTask): string[] {
  const state = task.state as { steps?: Record<string, { taskIds?: string[] }> } | undefined;
  return Object.values(state?.steps ?? {}).flatMap((s) => s.taskIds ?? []);
}
