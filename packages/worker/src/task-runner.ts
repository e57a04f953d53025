import {
  type Approval,
  type Approvals,
  type AsyncTasks,
  AwaitingApproval,
  approvalHash,
  type BegunAttempt,
  GatewayError,
  isTerminal,
  type LedgerTask,
  type Logger,
  type Principal,
  storableJson,
  type TaskDispatcher,
  type TaskJobData,
  type TaskLedger,
  TIMINGS,
  traceparentOf,
} from '@openclaw/core';
import type { WireError } from '@openclaw/protocol';
import { DelayedError, type Job, UnrecoverableError } from 'bullmq';

/** The error code with which an agent escalates a task to a human (`task.error`). */
export const INPUT_REQUIRED_CODE = 'INPUT_REQUIRED';

/** What the runners share with the worker process. */
export interface RunnerContext {
  workerId: string;
  ledger: TaskLedger;
  tasks: AsyncTasks;
  dispatcher: TaskDispatcher;
  /** Messages parked for approval. */
  approvals: Approvals;
  logger: Logger;
  /** True once the worker is handing its running jobs back to the queue (shutdown). */
  handingBack(): boolean;
  /** Whether a principal holds a permission under the cluster's policy now (planned steps' calls). */
  can(principal: Principal, permission: string): boolean;
}

/**
 * Runs `write` until it does not fail with `UNAVAILABLE` (Redis trouble), for up to `tries` times
 * `TIMINGS.workerLedgerRetryMs / 2` apart. @internal
 */
export async function whileUnavailable<T>(write: () => Promise<T>, tries = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await write();
    } catch (error) {
      if (!(error instanceof GatewayError && error.code === 'UNAVAILABLE') || i >= tries) throw error;
      await new Promise((resolve) => setTimeout(resolve, TIMINGS.workerLedgerRetryMs / 2));
    }
  }
}

/**
 * How many times an agent's output is written before the attempt gives up: 20 s, longer than a Redis
 * Cluster failover (about 4 s with a `cluster-node-timeout` of 2 s, 6 to 8 s with 5 s), shorter than
 * the lock on the job (30 s), which BullMQ renews meanwhile.
 */
const OUTPUT_WRITE_TRIES = 40;

/** The end of one run of a job: it parks (delayed) and will run again. */
export async function park(job: Job<TaskJobData>, token: string | undefined, until: number): Promise<never> {
  await job.moveToDelayed(Math.max(until, Date.now()), token);
  throw new DelayedError();
}

/**
 * Runs one async task job: one attempt at dispatching it to its agent (through the cluster bus, or
 * by POST to an HTTP agent), recording every state change in the ledger. Retryable failures are
 * thrown back to BullMQ, which retries them with exponential backoff and jitter; the rest end the
 * task. A task the agent escalates parks until a human answers or the escalation times out.
 */
export class TaskRunner {
  constructor(private readonly ctx: RunnerContext) {}

  async run(job: Job<TaskJobData>, token: string | undefined): Promise<string> {
    try {
      return await this.attempt(job, token);
    } catch (error) {
      if (error instanceof GatewayError && error.code === 'UNAVAILABLE') {
        // The ledger could not be written (Redis trouble): run again shortly, without spending one
        // of the task's attempts (a failed job would end the task as failed).
        return park(job, token, Date.now() + TIMINGS.workerLedgerRetryMs);
      }
      throw error;
    }
  }

  private async attempt(job: Job<TaskJobData>, token: string | undefined): Promise<string> {
    const { ledger } = this.ctx;
    const begun = await this.begin(job.data);
    const task = begun.task;
    if (!task || isTerminal(task.status)) return 'gone';
    let attempt = begun.attempt;
    // Started in one step, the attempt named this worker in the same step that found no cancel: a
    // cancel asked for since is sent here. Started from a record read earlier, it looks again below.
    const startedAtOnce = attempt !== undefined;
    if (attempt === undefined) {
      // The record needs a decision before an attempt can start.
      if (task.cancelRequested) {
        await this.finish(task, 'canceled', { error: canceledError() });
        return 'canceled';
      }
      if (task.response !== undefined) {
        // A human answered: the answer is the task's output.
        await this.finish(task, 'completed', { output: task.response.output });
        return 'answered';
      }
      if (task.status === 'input-required') {
        if (task.approvalId === undefined) return this.waitForHuman(job, token, task);
        const waited = await this.waitForApproval(job, token, task);
        if (waited !== 'approved') return waited;
      }
      // Only the worker holding the job's lock runs it, so counting from the record read above is safe;
      // an attempt cut short by a dying worker was counted by that worker.
      attempt = task.attempts + 1;
      const started = await ledger.transition(task, {
        status: 'working',
        from: task.approvalId === undefined ? ['submitted', 'working'] : ['submitted', 'working', 'input-required'],
        fields: { worker: this.ctx.workerId, startedAt: String(Date.now()), attempts: String(attempt) },
        event: { attempt },
      });
      if (!started.applied) return 'changed';
    }
    let output: unknown;
    try {
      const handle = await this.ctx.dispatcher.dispatch({
        taskId: task.taskId,
        attempt,
        record: false,
        agent: task.agent,
        task: task.task,
        data: task.data,
        timeoutMs: task.timeoutMs,
        caller: {
          principal: task.principal,
          tenant: task.tenant,
          agent: task.from.agent,
          onBehalfOf: task.from.onBehalfOf,
          chain: task.from.chain,
          agents: task.from.agents,
          roles: task.roles,
          delegationDepth: task.delegationDepth,
        },
        traceparent: traceparentOf() ?? task.traceparent,
        thread: task.thread,
        // A message that needs an approval parks the task (AwaitingApproval); once approved, the
        // attempt that follows uses the approval, bound to this very message.
        approval: { mode: 'park', approvalId: task.approvalId },
        onProgress: (progress) => {
          void ledger
            .transition(task, {
              eventName: 'task.progress',
              from: ['working'],
              whileAttempt: attempt,
              event: { progress },
            })
            .catch(() => undefined);
        },
      });
      // A cancel that came between the record's read and the start of the attempt: the flag is set
      // before the cancel is sent, so one of the two sees it. (A cancel sent here before the dispatch
      // began is kept by the dispatcher for it.)
      if (!startedAtOnce && (await ledger.cancelRequested(task.taskId))) this.ctx.dispatcher.cancelLocal(task.taskId);
      output = await handle.output;
    } catch (error) {
      return this.failed(job, token, task, attempt, asGatewayError(error));
    }
    if (storableJson(output) === undefined) {
      return this.failed(
        job,
        token,
        task,
        attempt,
        new GatewayError('PAYLOAD_TOO_LARGE', 'the agent returned more than 256 KiB, which a task record cannot keep'),
      );
    }
    // The output is only here: keep trying to record it through a Redis Cluster failover before
    // giving up (the task would then run again, and its agent see it twice).
    await whileUnavailable(() => this.finish(task, 'completed', { output }, attempt), OUTPUT_WRITE_TRIES);
    return 'completed';
  }

  /**
   * Reads the task and starts the attempt in one step when nothing stands in the way; a job queued
   * without its owner (by an earlier version) has its record read first.
   */
  private async begin(data: TaskJobData): Promise<BegunAttempt> {
    const { ledger, workerId } = this.ctx;
    if (data.tenant !== undefined && data.principal !== undefined) {
      return ledger.begin({ taskId: data.taskId, tenant: data.tenant, principal: data.principal }, workerId);
    }
    return { task: await ledger.get(data.taskId) };
  }

  /** Ends a task and wakes its workflow, if any. */
  async finish(
    task: LedgerTask,
    status: 'completed' | 'failed' | 'canceled' | 'rejected',
    result: { output?: unknown; error?: WireError },
    attempt?: number,
  ): Promise<boolean> {
    const fields: Record<string, string | undefined> = { endedAt: String(Date.now()), worker: undefined };
    const event: Record<string, unknown> = {};
    if (result.output !== undefined) {
      fields.output = storableJson(result.output);
      event.output = result.output;
    }
    if (result.error !== undefined) {
      fields.error = JSON.stringify(result.error);
      event.error = result.error;
    }
    if (attempt !== undefined) event.attempt = attempt;
    if (task.parentId !== undefined) event.parentId = task.parentId;
    // The outcome of an attempt counts only while it is the task's latest attempt.
    const done = await this.ctx.ledger.transition(task, { status, fields, event, whileAttempt: attempt });
    if (task.parentId !== undefined) await this.ctx.tasks.queue.wake(task.parentId);
    return done.applied;
  }

  private async failed(
    job: Job<TaskJobData>,
    token: string | undefined,
    task: LedgerTask,
    attempt: number,
    error: GatewayError,
  ): Promise<never | string> {
    if (this.ctx.handingBack()) {
      // Shutting down: give the job back; another worker runs the next attempt at once.
      this.ctx.logger.info({ taskId: task.taskId }, 'handing a running task back to the queue');
      return park(job, token, Date.now());
    }
    if (error.code === 'CANCELED') {
      await this.finish(task, 'canceled', { error: error.toWire() }, attempt);
      return 'canceled';
    }
    if (error instanceof AwaitingApproval) return this.awaitApproval(job, token, task, attempt, error.approval);
    if (error.code === 'POLICY_DENIED') {
      // Refused by governance: `rejected`, and never retried.
      await this.finish(task, 'rejected', { error: error.toWire() }, attempt);
      throw new UnrecoverableError(`${error.code}: ${error.message}`);
    }
    const details = error.details as { agentCode?: string; details?: unknown } | undefined;
    if (error.code === 'AGENT_ERROR' && details?.agentCode === INPUT_REQUIRED_CODE) {
      return this.escalate(job, token, task, attempt, { message: error.message, details: details.details });
    }
    // An agent that is not connected now may be restarting: async tasks wait for it.
    const retryable = error.retryable || error.code === 'AGENT_NOT_FOUND';
    if (retryable && job.attemptsMade + 1 < (job.opts.attempts ?? 1)) {
      await this.ctx.ledger.transition(task, {
        status: 'submitted',
        from: ['working'],
        whileAttempt: attempt,
        fields: { lastError: JSON.stringify(error.toWire()), worker: undefined },
        event: { attempt, lastError: error.toWire() },
      });
      throw new Error(`${error.code}: ${error.message}`);
    }
    await this.finish(task, 'failed', { error: error.toWire() }, attempt);
    throw new UnrecoverableError(`${error.code}: ${error.message}`);
  }

  /**
   * Parks a task that waits for a human. An answer, a decision or a cancel that came while this run
   * still held the job could not wake it (only a parked job can be woken): look once more after parking.
   */
  private async parkForHuman(
    job: Job<TaskJobData>,
    token: string | undefined,
    taskId: string,
    until: number,
  ): Promise<never> {
    await job.moveToDelayed(Math.max(until, Date.now()), token);
    const now = await this.ctx.ledger.get(taskId).catch(() => undefined);
    const decided =
      now?.approvalId !== undefined &&
      (await this.ctx.approvals.get(now.tenant, now.approvalId).catch(() => undefined))?.status !== 'pending';
    if (now && (now.response !== undefined || now.cancelRequested || decided)) await this.ctx.tasks.queue.wake(taskId);
    throw new DelayedError();
  }

  /**
   * A message of the task needs an approval: park the task in `input-required` until the approval is
   * decided (the decision wakes it) or expires. The attempt did not reach the agent, so it is not counted.
   */
  private async awaitApproval(
    job: Job<TaskJobData>,
    token: string | undefined,
    task: LedgerTask,
    attempt: number,
    approval: Approval,
  ): Promise<never> {
    const question = {
      approval: {
        approvalId: approval.approvalId,
        validator: approval.validator,
        reason: approval.reason ?? null,
        direction: approval.direction,
        required: approval.required,
        expiresAt: approval.expiresAt,
      },
    };
    await this.ctx.ledger.transition(task, {
      status: 'input-required',
      from: ['working'],
      whileAttempt: attempt,
      fields: {
        approvalId: approval.approvalId,
        question: JSON.stringify(question),
        escalateUntil: String(approval.expiresAt),
        attempts: String(approval.direction === 'request' ? attempt - 1 : attempt),
        worker: undefined,
      },
      event: {
        attempt,
        question,
        approvalId: approval.approvalId,
        submittedBy: task.principal,
        ...(task.parentId === undefined ? {} : { parentId: task.parentId }),
      },
      notifyOperators: true,
    });
    if (task.parentId !== undefined) await this.ctx.tasks.queue.wake(task.parentId);
    return this.parkForHuman(job, token, task.taskId, approval.expiresAt);
  }

  /**
   * Woken while waiting for an approval. @returns `approved` when the attempt may run now (a request
   * approved); otherwise the task has ended (rejected, expired, or an approved output delivered) or
   * parks again (DelayedError).
   */
  private async waitForApproval(job: Job<TaskJobData>, token: string | undefined, task: LedgerTask): Promise<string> {
    const { approvals } = this.ctx;
    const approvalId = task.approvalId!;
    let approval = await approvals.get(task.tenant, approvalId);
    if (approval?.status === 'pending') {
      if (Date.now() < approval.expiresAt) return this.parkForHuman(job, token, task.taskId, approval.expiresAt);
      approval = await approvals.expire(task.tenant, approvalId);
    }
    const refuse = async (reason: string, outcome: string): Promise<string> => {
      const error = new GatewayError('POLICY_DENIED', reason, {
        details: {
          validator: approval?.validator ?? null,
          approvalId,
          approval: approval?.status ?? 'missing',
          decisions: approval?.decisions ?? [],
        },
      });
      await this.finish(task, 'rejected', { error: error.toWire() });
      return outcome;
    };
    if (!approval) return refuse(`approval '${approvalId}' is gone`, 'approval-missing');
    if (approval.status === 'rejected') {
      const by = approval.decisions.find((d) => d.decision === 'reject');
      return refuse(
        `approval '${approvalId}' was rejected by ${by?.principal ?? 'an approver'}${by?.reason ? `: ${by.reason}` : ''}`,
        'approval-rejected',
      );
    }
    if (approval.status === 'expired') {
      return refuse(`approval '${approvalId}' expired before it was decided`, 'approval-expired');
    }
    if (approval.direction === 'request') return 'approved';
    // An agent's output that waited for approval: delivered now, as it was approved (its hash checked).
    const hash = approvalHash({
      direction: 'response',
      tenant: task.tenant,
      principal: task.principal,
      agent: task.agent,
      task: task.task,
      data: approval.data,
    });
    const used = await approvals.consume(task.tenant, approvalId, hash, task.principal, task.taskId);
    if (used.result !== 'ok' && used.result !== 'again') {
      return refuse(`approval '${approvalId}' does not let the output through (${used.result})`, 'approval-refused');
    }
    await this.finish(task, 'completed', { output: approval.data }, task.attempts);
    return 'completed';
  }

  /** The agent asked for a human: park the task in `input-required` until an answer or the timeout. */
  private async escalate(
    job: Job<TaskJobData>,
    token: string | undefined,
    task: LedgerTask,
    attempt: number,
    question: unknown,
  ): Promise<never> {
    const until = Date.now() + task.escalationTimeoutMs;
    await this.ctx.ledger.transition(task, {
      status: 'input-required',
      from: ['working'],
      whileAttempt: attempt,
      fields: { question: JSON.stringify(question), escalateUntil: String(until), worker: undefined },
      event: {
        attempt,
        question,
        submittedBy: task.principal,
        ...(task.parentId === undefined ? {} : { parentId: task.parentId }),
      },
      notifyOperators: true,
    });
    if (task.parentId !== undefined) await this.ctx.tasks.queue.wake(task.parentId);
    return this.parkForHuman(job, token, task.taskId, until);
  }

  /** Woken while waiting for a human: the wait is over (no answer in time) or not yet. */
  private async waitForHuman(job: Job<TaskJobData>, token: string | undefined, task: LedgerTask): Promise<string> {
    const until = task.escalateUntil ?? 0;
    if (Date.now() < until) return this.parkForHuman(job, token, task.taskId, until);
    const error = new GatewayError('TIMEOUT', `no operator answered within ${task.escalationTimeoutMs} ms`, {
      retryable: false,
      details: { escalation: 'timeout', onTimeout: task.escalationOnTimeout },
    });
    await this.finish(task, 'failed', { error: error.toWire() });
    return 'escalation-timeout';
  }
}

export function canceledError(): WireError {
  return new GatewayError('CANCELED', 'the task was canceled').toWire();
}

export function asGatewayError(error: unknown): GatewayError {
  return error instanceof GatewayError ? error : new GatewayError('INTERNAL', 'internal error', { cause: error });
}
