import type { RetryPolicy, TaskState, WorkflowDefinition } from '@openclaw/protocol';
import type { ClusterBus } from '../bus/cluster-bus';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { AgentRetryPolicies } from './agent-retry-policies';
import type { AsyncTaskDefaults } from './async-task-defaults';
import type { LedgerTask } from './ledger-record';
import { TaskInterventions } from './task-interventions';
import type { TaskLedger } from './task-ledger';
import type { TaskQueue } from './task-queue';
import {
  type AsyncTaskRequest,
  type StepTaskRequest,
  type Submitted,
  type Submitter,
  TaskSubmissions,
} from './task-submissions';
import { type TaskViewer, visible, visibleTask } from './task-viewer';

/** Options of {@link AsyncTasks}. */
export interface AsyncTasksOptions {
  redis: RedisClient;
  keys: RedisKeys;
  ledger: TaskLedger;
  queue: TaskQueue;
  bus: ClusterBus;
  logger: Logger;
  defaults: AsyncTaskDefaults;
}

/**
 * The gateway's side of durable coordination: submits async tasks and workflows (ledger record,
 * then BullMQ job), and serves their reads, cancels, human answers and retries from any replica.
 * Submitting is {@link TaskSubmissions}'s; cancels, answers and retries are {@link TaskInterventions}'.
 */
export class AsyncTasks {
  readonly ledger: TaskLedger;
  readonly queue: TaskQueue;
  readonly defaults: AsyncTaskDefaults;
  private readonly retries: AgentRetryPolicies;
  private readonly submissions: TaskSubmissions;
  private readonly interventions: TaskInterventions;

  constructor(options: AsyncTasksOptions) {
    const { ledger, queue, logger, defaults } = options;
    this.ledger = ledger;
    this.queue = queue;
    this.defaults = defaults;
    this.retries = new AgentRetryPolicies(options.redis, options.keys, defaults.retentionMs);
    this.submissions = new TaskSubmissions({ ledger, queue, retries: this.retries, logger, defaults });
    this.interventions = new TaskInterventions({ ledger, queue, bus: options.bus, logger, defaults });
  }

  /** Submits an agent call to run in the background. Answers at once. */
  submit(from: Submitter, request: AsyncTaskRequest): Promise<Submitted> {
    return this.submissions.submit(from, request);
  }

  /** Starts a workflow. Every step's agent must be callable by the submitter (checked by the caller). */
  startWorkflow(
    from: Submitter,
    workflow: WorkflowDefinition,
    input: unknown,
    options: { idempotencyKey?: string; traceparent?: string; thread?: string } = {},
  ): Promise<Submitted> {
    return this.submissions.startWorkflow(from, workflow, input, options);
  }

  /**
   * Creates and enqueues a workflow's step task with a given id (planned in the workflow's state
   * first, so a workflow turn that dies half-way creates the same children when it runs again).
   * Does nothing if the task already exists.
   */
  createStep(parent: LedgerTask, step: StepTaskRequest): Promise<void> {
    return this.submissions.createStep(parent, step);
  }

  /** Cancels a workflow's steps that have not ended (best effort; each is canceled as `cancel` does). */
  cancelSteps(taskIds: readonly string[]): Promise<void> {
    return this.interventions.cancelSteps(taskIds);
  }

  /**
   * A task the viewer may see.
   * @throws {GatewayError} `NOT_FOUND` otherwise (another tenant's or principal's task looks absent).
   */
  get(taskId: string, viewer: TaskViewer): Promise<LedgerTask> {
    return visibleTask(this.ledger, taskId, viewer);
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
  cancel(taskId: string, viewer: TaskViewer): Promise<TaskState> {
    return this.interventions.cancel(taskId, viewer);
  }

  /**
   * An operator's answer to a task in `input-required`: it becomes the task's output (or the
   * escalated step's), and the task's job runs again at once to carry on.
   * @throws {GatewayError} `NOT_FOUND`, or `CONFLICT` when the task is not waiting for input.
   */
  respond(taskId: string, output: unknown, viewer: TaskViewer): Promise<void> {
    return this.interventions.respond(taskId, output, viewer);
  }

  /**
   * Runs a failed or canceled task again from its first attempt (a workflow from its first step).
   * @throws {GatewayError} `NOT_FOUND`, or `CONFLICT` when the task has not failed or been canceled.
   */
  retry(taskId: string, viewer: TaskViewer): Promise<void> {
    return this.interventions.retry(taskId, viewer);
  }

  /** Records an agent's default retries (set when it registers). */
  setAgentRetry(tenant: string, agent: string, retry: RetryPolicy): Promise<void> {
    return this.retries.set(tenant, agent, retry);
  }
}
