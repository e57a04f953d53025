import { randomUUID } from 'node:crypto';
import {
  type EscalationPolicy,
  GatewayError,
  type RetryPolicy,
  RetryPolicySchema,
  switchBranches,
  type TaskOrigin,
  type TaskState,
  type WorkflowDefinition,
  type WorkflowStep,
} from '@openclaw/protocol';
import type Redis from 'ioredis';
import type { PrincipalGrants } from '../auth/principal';
import type { ClusterBus } from '../bus/cluster-bus';
import { GATEWAY_SETTINGS } from '../config/settings';
import { TIMINGS } from '../config/timings';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { isTerminal, type LedgerTask, type TaskLedger } from './task-ledger';
import { stillHeld, type TaskQueue } from './task-queue';

/** Cluster defaults of async tasks (from the gateway's settings). */
export interface AsyncTaskDefaults {
  /** Attempts in all when neither the call nor the agent says. */
  attempts: number;
  backoffMs: number;
  /** Deadline of one attempt when the call gives none. */
  timeoutMs: number;
  /** How long records (and failed jobs) are kept after their last change. */
  retentionMs: number;
  /** How long an idempotency key stands for its task. */
  idempotencyWindowMs: number;
  /** How long to wait for a human when no policy says. */
  escalationTimeoutMs: number;
  /** Deadline of a workflow that gives none. */
  workflowDeadlineMs: number;
}

/** The settings async tasks take their defaults from (see config/settings.ts). */
export interface AsyncTaskSettings {
  taskAttempts: number;
  taskBackoffMs: number;
  defaultTimeoutMs: number;
  taskRetentionMs: number;
  idempotencyWindowMs: number;
  escalationTimeoutMs: number;
  workflowDeadlineMs: number;
}

/** Async task defaults from settings; without any, the settings' own defaults. */
export function asyncTaskDefaults(settings?: AsyncTaskSettings): AsyncTaskDefaults {
  const s =
    settings ??
    (Object.fromEntries(
      (
        [
          'taskAttempts',
          'taskBackoffMs',
          'defaultTimeoutMs',
          'taskRetentionMs',
          'idempotencyWindowMs',
          'escalationTimeoutMs',
          'workflowDeadlineMs',
        ] as const
      ).map((key) => [key, Number(GATEWAY_SETTINGS[key].default)]),
    ) as unknown as AsyncTaskSettings);
  return {
    attempts: s.taskAttempts,
    backoffMs: s.taskBackoffMs,
    timeoutMs: s.defaultTimeoutMs,
    retentionMs: s.taskRetentionMs,
    idempotencyWindowMs: s.idempotencyWindowMs,
    escalationTimeoutMs: s.escalationTimeoutMs,
    workflowDeadlineMs: s.workflowDeadlineMs,
  };
}

/** Who submits: the origin the agent is told, the tenant, and what governance judges by. */
export type Submitter = TaskOrigin & {
  tenant: string;
  roles?: string[];
  delegationDepth?: number;
  /** The submitter's own grants: kept with a workflow that plans, to authorize its planned steps. */
  grants?: PrincipalGrants;
};

/** Who asks: the principal, its tenant, and whether it may see every task of the tenant. */
export interface TaskViewer {
  principal: string;
  tenant: string;
  /** Holds `task:read:any`: an operator. */
  any: boolean;
}

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
}

/** What submitting answers: the task, and whether an idempotency key matched an earlier one. */
export interface Submitted {
  taskId: string;
  status: TaskState;
  duplicate?: boolean;
}

/** Options of {@link AsyncTasks}. */
export interface AsyncTasksOptions {
  redis: Redis;
  keys: RedisKeys;
  ledger: TaskLedger;
  queue: TaskQueue;
  bus: ClusterBus;
  logger: Logger;
  defaults: AsyncTaskDefaults;
}

const RETRY_CACHE_MAX = 10_000;

/**
 * The gateway's side of durable coordination: submits async tasks and workflows (ledger record,
 * then BullMQ job), and serves their reads, cancels, human answers and retries from any replica.
 */
export class AsyncTasks {
  private readonly redis: Redis;
  private readonly keys: RedisKeys;
  readonly ledger: TaskLedger;
  readonly queue: TaskQueue;
  private readonly bus: ClusterBus;
  private readonly logger: Logger;
  readonly defaults: AsyncTaskDefaults;
  private readonly retryCache = new Map<string, { retry: RetryPolicy | undefined; until: number }>();

  constructor(options: AsyncTasksOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.ledger = options.ledger;
    this.queue = options.queue;
    this.bus = options.bus;
    this.logger = options.logger;
    this.defaults = options.defaults;
  }

  /** Submits an agent call to run in the background. Answers at once. */
  async submit(from: Submitter, request: AsyncTaskRequest): Promise<Submitted> {
    const retry = request.retry ?? (await this.agentRetry(from.tenant, request.agent));
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
    return this.enqueueNew(task, request.idempotencyKey);
  }

  /** Starts a workflow. Every step's agent must be callable by the submitter (checked by the caller). */
  async startWorkflow(
    from: Submitter,
    workflow: WorkflowDefinition,
    input: unknown,
    options: { idempotencyKey?: string; traceparent?: string } = {},
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
    return this.enqueueNew(task, options.idempotencyKey);
  }

  /**
   * Creates and enqueues a workflow's step task with a given id (planned in the workflow's state
   * first, so a workflow turn that dies half-way creates the same children when it runs again).
   * Does nothing if the task already exists.
   */
  async createStep(
    parent: LedgerTask,
    step: {
      taskId: string;
      stepId: string;
      agent: string;
      task: string;
      data: unknown;
      timeoutMs?: number;
      retry?: RetryPolicy;
      escalation?: EscalationPolicy;
    },
  ): Promise<void> {
    if (await this.ledger.get(step.taskId)) {
      if ((await this.queue.state(step.taskId)) !== 'missing') return;
      const existing = await this.ledger.get(step.taskId);
      if (existing && !isTerminal(existing.status)) await this.queue.add(step.taskId, enqueueOptions(existing));
      return;
    }
    const retry = step.retry ?? (await this.agentRetry(parent.tenant, step.agent));
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
    await this.ledger.create(task);
    await this.queue.add(task.taskId, enqueueOptions(task));
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
   * A task the viewer may see.
   * @throws {GatewayError} `NOT_FOUND` otherwise (another tenant's or principal's task looks absent).
   */
  async get(taskId: string, viewer: TaskViewer): Promise<LedgerTask> {
    const task = await this.ledger.get(taskId);
    if (!task || !visible(task, viewer)) throw new GatewayError('NOT_FOUND', `no task '${taskId}'`);
    return task;
  }

  /** Whether the task exists as an async task (any owner). */
  async isAsync(taskId: string): Promise<boolean> {
    return (await this.ledger.get(taskId)) !== undefined;
  }

  /** The tenant's tasks in a status; a viewer without `any` sees only its own. */
  async list(viewer: TaskViewer, status: TaskState, limit: number): Promise<LedgerTask[]> {
    const tasks = await this.ledger.list(viewer.tenant, status, viewer.any ? limit : Math.min(1000, limit * 4));
    return tasks.filter((t) => visible(t, viewer)).slice(0, limit);
  }

  /**
   * Cancels an async task: a queued or parked job is removed at once; a running one is stopped by
   * its worker (the agent receives `task.cancel`). A workflow's running steps are canceled too.
   * @throws {GatewayError} `NOT_FOUND`, or `CONFLICT` when it has already ended.
   */
  async cancel(taskId: string, viewer: TaskViewer): Promise<TaskState> {
    const task = await this.get(taskId, viewer);
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
    const task = await this.get(taskId, viewer);
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
    const task = await this.get(taskId, viewer);
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

  /** Records an agent's default retries (set when it registers). */
  async setAgentRetry(tenant: string, agent: string, retry: RetryPolicy): Promise<void> {
    const key = this.agentPolicyKey(tenant, agent);
    await this.redis.set(key, JSON.stringify(retry), 'PX', this.defaults.retentionMs);
    this.retryCache.set(key, { retry, until: Date.now() + TIMINGS.agentRetryPolicyCacheMs });
  }

  private async agentRetry(tenant: string, agent: string): Promise<RetryPolicy | undefined> {
    const key = this.agentPolicyKey(tenant, agent);
    const cached = this.retryCache.get(key);
    if (cached && cached.until > Date.now()) return cached.retry;
    const text = await this.redis.get(key).catch(() => null);
    let retry: RetryPolicy | undefined;
    try {
      const parsed = text === null ? undefined : RetryPolicySchema.safeParse(JSON.parse(text));
      retry = parsed?.success ? parsed.data : undefined;
    } catch {
      retry = undefined;
    }
    if (this.retryCache.size >= RETRY_CACHE_MAX) this.retryCache.clear();
    this.retryCache.set(key, { retry, until: Date.now() + TIMINGS.agentRetryPolicyCacheMs });
    return retry;
  }

  private agentPolicyKey(tenant: string, agent: string): string {
    return `${this.keys.registry}agent-retry:${tenant}:${agent}`;
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

/** The queue options of a task, from its record. */
export function enqueueOptions(task: LedgerTask) {
  return {
    kind: task.kind,
    attempts: task.maxAttempts,
    backoffMs: task.backoffMs,
    retentionMs: task.retentionMs,
    traceparent: task.traceparent,
  };
}

/** Whether any step (in any switch case) is a plan step. */
function plans(steps: readonly WorkflowStep[]): boolean {
  return steps.some((step) => 'plan' in step || ('switch' in step && switchBranches(step).some(([, b]) => plans(b))));
}

/** The ids of a workflow's child tasks, from its run state. */
export function childrenOf(task: LedgerTask): string[] {
  const state = task.state as { steps?: Record<string, { taskIds?: string[] }> } | undefined;
  return Object.values(state?.steps ?? {}).flatMap((s) => s.taskIds ?? []);
}

function visible(task: LedgerTask, viewer: TaskViewer): boolean {
  return task.tenant === viewer.tenant && (viewer.any || task.principal === viewer.principal);
}

function originOf(from: Submitter): TaskOrigin {
  const out: TaskOrigin = { principal: from.principal };
  if (from.agent !== undefined) out.agent = from.agent;
  if (from.onBehalfOf !== undefined) out.onBehalfOf = from.onBehalfOf;
  if (from.chain !== undefined) out.chain = from.chain;
  if (from.agents !== undefined && from.agents.length > 0) out.agents = from.agents;
  return out;
}
