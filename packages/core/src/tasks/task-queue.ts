import { GatewayError } from '@openclaw/protocol';
import { SpanKind } from '@opentelemetry/api';
import { type Job, type JobsOptions, Queue } from 'bullmq';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { inSpan, traceparentOf } from '../telemetry/tracing';
import type { TaskKind } from './ledger-record';

/** The BullMQ queue every async task and workflow goes through. */
export const TASK_QUEUE_NAME = 'tasks';

/** How often `released` looks at a job that a worker still holds. */
const RELEASE_POLL_MS = 20;

/**
 * What a job carries: the task's id (the ledger holds the rest), whose task it is (so that a worker
 * can start it in one step, {@link TaskLedger.begin}), and its trace context. Jobs queued by
 * earlier versions carry only the id.
 */
export interface TaskJobData {
  taskId: string;
  tenant?: string;
  principal?: string;
  traceparent?: string;
}

/** Options of one enqueued task. */
export interface EnqueueOptions {
  kind: TaskKind;
  /** Attempts in all (BullMQ retries retryable failures up to this). */
  attempts: number;
  /** First retry delay; doubled on each retry, with jitter. */
  backoffMs: number;
  /** How long failed jobs stay in BullMQ's failed set. */
  retentionMs: number;
  /** Whose task it is. */
  tenant: string;
  principal: string;
  traceparent?: string;
  /** Run no earlier than this many ms from now. */
  delayMs?: number;
}

/** Where a job is in BullMQ. */
export type JobState =
  | 'waiting'
  | 'delayed'
  | 'active'
  | 'completed'
  | 'failed'
  | 'prioritized'
  | 'waiting-children'
  | 'missing';

/**
 * The producer side of the task queue. The job id is the task id, so adding a task twice (a retry
 * after a crash between ledger and queue) never makes two jobs.
 */
export class TaskQueue {
  readonly queue: Queue<TaskJobData>;

  constructor(connection: RedisClient, keys: RedisKeys, logger: Logger) {
    this.queue = new Queue<TaskJobData>(TASK_QUEUE_NAME, { connection, prefix: keys.queuePrefix() });
    // An unhandled 'error' event would kill the process on a Redis blip.
    this.queue.on('error', (error: Error) => logger.warn({ err: error.message }, 'task queue error'));
  }

  /**
   * Enqueues a task.
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot take it.
   */
  async add(taskId: string, options: EnqueueOptions): Promise<void> {
    const jobOptions: JobsOptions = {
      jobId: taskId,
      attempts: options.attempts,
      backoff: { type: 'exponential', delay: options.backoffMs, jitter: 0.5 },
      // The ledger keeps the task; a completed job is of no more use.
      removeOnComplete: true,
      removeOnFail: { age: Math.ceil(options.retentionMs / 1000) },
    };
    if (options.delayMs !== undefined && options.delayMs > 0) jobOptions.delay = options.delayMs;
    const data: TaskJobData = { taskId, tenant: options.tenant, principal: options.principal };
    // The enqueue is a producer span; the job carries its context, so the worker's run is its child.
    await inSpan(
      `queue add ${options.kind}`,
      {
        kind: SpanKind.PRODUCER,
        parent: options.traceparent,
        attributes: { 'messaging.system': 'bullmq', 'openclaw.task_id': taskId },
      },
      async () => {
        const traceparent = traceparentOf() ?? options.traceparent;
        if (traceparent !== undefined) data.traceparent = traceparent;
        try {
          await this.queue.add(options.kind, data, jobOptions);
        } catch (error) {
          throw new GatewayError('UNAVAILABLE', 'the task queue (Redis) is unavailable; retry shortly', {
            cause: error,
          });
        }
      },
    );
  }

  /** The job of a task, if BullMQ still has it. */
  async job(taskId: string): Promise<Job<TaskJobData> | undefined> {
    try {
      return (await this.queue.getJob(taskId)) as Job<TaskJobData> | undefined;
    } catch (error) {
      throw new GatewayError('UNAVAILABLE', 'the task queue (Redis) is unavailable; retry shortly', { cause: error });
    }
  }

  /** Where the job of a task is. */
  async state(taskId: string): Promise<JobState> {
    const job = await this.job(taskId);
    if (!job) return 'missing';
    const state = await job.getState();
    return state === 'unknown' ? 'missing' : (state as JobState);
  }

  /**
   * Waits until no worker holds the task's job (a worker that has just ended a run still holds it
   * until BullMQ moves it on). @returns the job's state then, or `active` if it is still held after
   * `timeoutMs` (a worker that died holding it: BullMQ takes it back once its lock expires).
   */
  async released(taskId: string, timeoutMs: number): Promise<JobState> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const state = await this.state(taskId);
      if (state !== 'active' || Date.now() >= end) return state;
      await new Promise((resolve) => setTimeout(resolve, RELEASE_POLL_MS));
    }
  }

  /**
   * Removes a job that is not running. @returns whether it was removed (false when a worker holds it
   * or it is gone).
   */
  async remove(taskId: string): Promise<boolean> {
    try {
      return (await this.queue.remove(taskId)) === 1;
    } catch {
      return false;
    }
  }

  /** Runs a delayed job now (a parked task that was answered, a workflow whose step ended). */
  async wake(taskId: string): Promise<boolean> {
    const job = await this.job(taskId).catch(() => undefined);
    if (!job) return false;
    try {
      await job.promote();
      return true;
    } catch {
      // Not delayed (already waiting or running): it will look at the ledger when it runs.
      return false;
    }
  }

  /**
   * Puts a failed or completed job back in the queue, from its first attempt; adds it again if
   * BullMQ no longer has it. A job that is still queued is left as it is (it reads the ledger when
   * it runs).
   * @throws {GatewayError} `CONFLICT` (retryable) while a worker still holds the job: it would end
   * that job, and this run with it, without reading the ledger again.
   */
  async requeue(taskId: string, options: EnqueueOptions): Promise<void> {
    const job = await this.job(taskId);
    if (job) {
      const state = await job.getState();
      if (state === 'failed' || state === 'completed') {
        await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
        return;
      }
      if (state === 'active') throw stillHeld(taskId);
      if (state === 'delayed') {
        // Still parked from the last run (its backoff or wait): run it now.
        await job.promote().catch(() => undefined);
        return;
      }
      if (state === 'waiting' || state === 'prioritized') return;
      await job.remove().catch(() => undefined);
    }
    await this.add(taskId, options);
  }

  /** Jobs per state, for metrics and `openclaw worker status`. */
  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized');
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

/** `CONFLICT` (retryable): a worker still holds the task's job. */
export function stillHeld(taskId: string): GatewayError {
  return new GatewayError('CONFLICT', `the last run of task '${taskId}' is still ending on its worker; retry shortly`, {
    retryable: true,
    retryAfterMs: 1000,
  });
}
