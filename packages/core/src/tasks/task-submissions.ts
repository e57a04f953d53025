import { randomUUID } from 'node:crypto';
import {
  type EscalationPolicy,
  type RetryPolicy,
  switchBranches,
  type TaskOrigin,
  type TaskState,
  type WorkflowDefinition,
  type WorkflowStep,
} from '@openclaw/protocol';
import type { PrincipalGrants } from '../auth/principal';
import type { Logger } from '../telemetry/logger';
import type { AgentRetryPolicies } from './agent-retry-policies';
import type { AsyncTaskDefaults } from './async-task-defaults';
import { enqueueOptions, isTerminal, type LedgerTask } from './ledger-record';
import type { TaskLedger } from './task-ledger';
import type { TaskQueue } from './task-queue';

/** Who submits: the origin the agent is told, the tenant, and what governance judges by. */
export type Submitter = TaskOrigin & {
  tenant: string;
  roles?: string[];
  delegationDepth?: number;
  /** The submitter's own grants: kept with a workflow that plans, to authorize its planned steps. */
  grants?: PrincipalGrants;
};

/** A new async task. */
export interface AsyncTaskRequest {
  agent: string;
  task: string;
  data: unknown;
  timeoutMs?: number;
  idempotencyKey?: string;
  retry?: RetryPolicy;
  escalation?: EscalationPolicy;
  traceparent?: string;
  /** The memory thread of the conversation, given to the agent with every attempt. */
  thread?: string;
}

/** What submitting answers: the task, and whether an idempotency key matched an earlier one. */
export interface Submitted {
  taskId: string;
  status: TaskState;
  duplicate?: boolean;
}

/** A workflow step's child task, with the id the workflow planned for it. */
export interface StepTaskRequest {
  taskId: string;
  stepId: string;
  agent: string;
  task: string;
  data: unknown;
  timeoutMs?: number;
  retry?: RetryPolicy;
  escalation?: EscalationPolicy;
}

/** What {@link TaskSubmissions} writes to and reads from. */
export interface TaskSubmissionsOptions {
  ledger: TaskLedger;
  queue: TaskQueue;
  /** Agents' default retries, for tasks that give none. */
  retries: AgentRetryPolicies;
  logger: Logger;
  defaults: AsyncTaskDefaults;
}

/**
 * New async tasks: an agent call, a workflow, or a workflow's step. Each is written to the ledger
 * first, then queued as a BullMQ job; an idempotency key makes a repeated submit answer with the
 * first task (and queue it, if the first submit died between the two).
 */
export class TaskSubmissions {
  private readonly ledger: TaskLedger;
  private readonly queue: TaskQueue;
  private readonly retries: AgentRetryPolicies;
  private readonly logger: Logger;
  private readonly defaults: AsyncTaskDefaults;

  constructor(options: TaskSubmissionsOptions) {
    this.ledger = options.ledger;
    this.queue = options.queue;
    this.retries = options.retries;
    this.logger = options.logger;
    this.defaults = options.defaults;
  }

  /** Submits an agent call to run in the background. Answers at once. */
  async submit(from: Submitter, request: AsyncTaskRequest): Promise<Submitted> {
    const retry = request.retry ?? (await this.retries.get(from.tenant, request.agent));
    const now = Date.now();
    const task: LedgerTask = {
      taskId: randomUUID(),
      kind: 'task',
      agent: request.agent,
      task: request.task,
      status: 'submitted',
      createdAt: now,
      updatedAt: now,
      principal: from.principal,
      tenant: from.tenant,
      from: originOf(from),
      roles: from.roles ?? [],
      delegationDepth: from.delegationDepth,
      data: request.data ?? null,
      timeoutMs: request.timeoutMs ?? this.defaults.timeoutMs,
      maxAttempts: retry?.attempts ?? this.defaults.attempts,
      backoffMs: retry?.backoffMs ?? this.defaults.backoffMs,
      attempts: 0,
      cancelRequested: false,
      escalationTimeoutMs: request.escalation?.timeoutMs ?? this.defaults.escalationTimeoutMs,
      escalationOnTimeout: request.escalation?.onTimeout ?? 'fail',
      retentionMs: this.defaults.retentionMs,
    };
    if (request.traceparent !== undefined) task.traceparent = request.traceparent;
    if (request.thread !== undefined) task.thread = request.thread;
    return this.enqueueNew(task, request.idempotencyKey);
  }

  /** Starts a workflow. Every step's agent must be callable by the submitter (checked by the caller). */
  async startWorkflow(
    from: Submitter,
    workflow: WorkflowDefinition,
    input: unknown,
    options: { idempotencyKey?: string; traceparent?: string; thread?: string } = {},
  ): Promise<Submitted> {
    const now = Date.now();
    const deadlineMs = workflow.deadlineMs ?? this.defaults.workflowDeadlineMs;
    const task: LedgerTask = {
      taskId: randomUUID(),
      kind: 'workflow',
      agent: '',
      task: workflow.name ?? 'workflow',
      status: 'submitted',
      createdAt: now,
      updatedAt: now,
      principal: from.principal,
      tenant: from.tenant,
      from: originOf(from),
      roles: from.roles ?? [],
      data: input ?? null,
      timeoutMs: deadlineMs,
      // A workflow's own job is not retried: its steps are.
      maxAttempts: 1,
      backoffMs: this.defaults.backoffMs,
      attempts: 0,
      cancelRequested: false,
      escalationTimeoutMs: this.defaults.escalationTimeoutMs,
      escalationOnTimeout: 'fail',
      retentionMs: this.defaults.retentionMs,
      definition: workflow,
      deadline: now + deadlineMs,
      ...(from.grants !== undefined && plans(workflow.steps) ? { grants: from.grants } : {}),
      stepDefaults: {
        attempts: this.defaults.attempts,
        backoffMs: this.defaults.backoffMs,
        timeoutMs: this.defaults.timeoutMs,
      },
    };
    if (options.traceparent !== undefined) task.traceparent = options.traceparent;
    if (options.thread !== undefined) task.thread = options.thread;
    return this.enqueueNew(task, options.idempotencyKey);
  }

  /**
   * Creates and enqueues a workflow's step task with a given id (planned in the workflow's state
   * first, so a workflow turn that dies half-way creates the same children when it runs again).
   * Does nothing if the task already exists.
   */
  async createStep(parent: LedgerTask, step: StepTaskRequest): Promise<void> {
    if (await this.ledger.get(step.taskId)) {
      if ((await this.queue.state(step.taskId)) !== 'missing') return;
      const existing = await this.ledger.get(step.taskId);
      if (existing && !isTerminal(existing.status)) await this.queue.add(step.taskId, enqueueOptions(existing));
      return;
    }
    const retry = step.retry ?? (await this.retries.get(parent.tenant, step.agent));
    // The gateway's defaults when the workflow started (a worker has no settings of its own for them).
    const defaults = parent.stepDefaults ?? this.defaults;
    const now = Date.now();
    const task: LedgerTask = {
      taskId: step.taskId,
      kind: 'task',
      agent: step.agent,
      task: step.task,
      status: 'submitted',
      createdAt: now,
      updatedAt: now,
      principal: parent.principal,
      tenant: parent.tenant,
      from: parent.from,
      roles: parent.roles,
      delegationDepth: parent.delegationDepth,
      data: step.data ?? null,
      timeoutMs: step.timeoutMs ?? defaults.timeoutMs,
      maxAttempts: retry?.attempts ?? defaults.attempts,
      backoffMs: retry?.backoffMs ?? defaults.backoffMs,
      attempts: 0,
      parentId: parent.taskId,
      stepId: step.stepId,
      cancelRequested: false,
      escalationTimeoutMs: step.escalation?.timeoutMs ?? parent.escalationTimeoutMs,
      escalationOnTimeout: step.escalation?.onTimeout ?? 'fail',
      retentionMs: parent.retentionMs,
    };
    if (parent.traceparent !== undefined) task.traceparent = parent.traceparent;
    if (parent.thread !== undefined) task.thread = parent.thread;
    await this.ledger.create(task);
    await this.queue.add(task.taskId, enqueueOptions(task));
  }

  private async enqueueNew(task: LedgerTask, idempotencyKey: string | undefined): Promise<Submitted> {
    if (idempotencyKey !== undefined) {
      const earlier = await this.ledger.claimIdempotencyKey(
        task.tenant,
        idempotencyKey,
        task.taskId,
        this.defaults.idempotencyWindowMs,
      );
      if (earlier !== undefined) {
        const existing = await this.ledger.get(earlier);
        if (existing) {
          // Heal a submit that crashed between the ledger and the queue.
          if (existing.status === 'submitted' && (await this.queue.state(existing.taskId)) === 'missing') {
            await this.queue.add(existing.taskId, enqueueOptions(existing));
          }
          return { taskId: existing.taskId, status: existing.status, duplicate: true };
        }
      }
    }
    await this.ledger.create(task);
    try {
      await this.queue.add(task.taskId, enqueueOptions(task));
    } catch (error) {
      await this.abandon(task, idempotencyKey);
      throw error;
    }
    this.logger.debug({ taskId: task.taskId, kind: task.kind }, 'async task submitted');
    return { taskId: task.taskId, status: 'submitted' };
  }

  /**
   * Ends a new task that could not be queued. Its submitter is told `UNAVAILABLE` (retryable) and
   * sends it again, with the same idempotency key if it gave one: that repeat must make a task that
   * runs, not answer with this one, failed. So the key is released first, and the record is ended
   * only once it is. When Redis cannot even do that, the record stays `submitted` with no job, and
   * the repeat queues it (the idempotency branch of `enqueueNew`).
   */
  private async abandon(task: LedgerTask, idempotencyKey: string | undefined): Promise<void> {
    if (idempotencyKey !== undefined) {
      const released = await this.ledger
        .releaseIdempotencyKey(task.tenant, idempotencyKey, task.taskId)
        .catch(() => false);
      if (!released) return;
    }
    await this.ledger
      .transition(task, {
        status: 'failed',
        fields: { error: JSON.stringify({ code: 'UNAVAILABLE', message: 'could not be queued', retryable: true }) },
      })
      .catch(() => undefined);
  }
}

/** Whether any step (in any switch case) is a plan step. */
function plans(steps: readonly WorkflowStep[]): boolean {
  return steps.some((step) => 'plan' in step || ('switch' in step && switchBranches(step).some(([, b]) => plans(b))));
}

function originOf(from: Submitter): TaskOrigin {
  const out: TaskOrigin = { principal: from.principal };
  if (from.agent !== undefined) out.agent = from.agent;
  if (from.onBehalfOf !== undefined) out.onBehalfOf = from.onBehalfOf;
  if (from.chain !== undefined) out.chain = from.chain;
  if (from.agents !== undefined && from.agents.length > 0) out.agents = from.agents;
  return out;
}
