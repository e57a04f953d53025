import type { ServerResponse } from 'node:http';
import { type AsyncTaskRequest, GatewayError, type LedgerTask } from '@openclaw/core';
import type { TaskState } from '@openclaw/protocol';
import { callLimits } from '../session-hub';
import type { TaskCaller } from '../task-operations';
import type { HttpApiReplica } from './endpoint';

/**
 * Async tasks for the open protocols' endpoints (A2A tasks, MCP task-augmented tool calls): submitted
 * through the same gate as a native async `coordinator`, and waited for over HTTP.
 */

/**
 * Submits an async task for an outside protocol's request: the principal's permission, then one
 * request charged to its cluster-wide rate limits (there is no connection to limit), then the ledger.
 * @returns the task's record as submitted.
 */
export async function submitTask(
  replica: HttpApiReplica,
  caller: TaskCaller,
  request: AsyncTaskRequest,
): Promise<LedgerTask> {
  replica.authorizer.require(caller.principal, `agent:invoke:${request.agent}`);
  await replica.registry.routing.admit(callLimits(replica.config, caller.principal));
  const submitted = await replica.tasks.submit(caller, request);
  const record = await replica.asyncTasks.ledger.get(submitted.taskId);
  if (!record) {
    throw new GatewayError(
      'UNAVAILABLE',
      `task ${submitted.taskId} was submitted but could not be read back; read it again`,
    );
  }
  return record;
}

/** How {@link awaitTask} waits. */
export interface AwaitOptions {
  /** Gives up after this long (the record as it is then is returned). Default: no limit. */
  waitMs?: number;
  /**
   * `'start'` (the default): every status from the task's start counts, so an end that came before
   * the wait is found. `'now'`: only the task as it is now and what follows (a task that has just
   * been answered, whose earlier `input-required` must not count).
   */
  from?: 'start' | 'now';
}

/**
 * Follows a task until one of its statuses passes `done`, the wait runs out, or the client of `res`
 * hangs up. @returns the task's record then; undefined if the client hung up.
 */
export async function awaitTask(
  replica: HttpApiReplica,
  caller: TaskCaller,
  task: LedgerTask,
  res: ServerResponse,
  done: (status: TaskState) => boolean,
  options: AwaitOptions = {},
): Promise<LedgerTask | undefined> {
  const fromNow = options.from === 'now';
  if (!fromNow && done(task.status)) return task;
  let stop: (() => void) | undefined;
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  const hungUp = new Promise<false>((resolve) => res.once('close', () => resolve(false)));
  try {
    const reached = await Promise.race([
      hungUp,
      new Promise<boolean>((resolve, reject) => {
        if (options.waitMs !== undefined) timer = setTimeout(() => resolve(false), options.waitMs);
        replica.taskEvents
          // From the task's start, every event: its end may have come before this. From now: live
          // events, then the record, so a change between the two is seen either way.
          .follow(caller.principal, task, fromNow ? undefined : '0-0', (frame) => {
            if (frame.event === 'task.status' && done(frame.status as TaskState)) resolve(true);
          })
          .then(async (stopping) => {
            // Hung up while the watch was being set up: stop it now.
            if (finished) return stopping();
            stop = stopping;
            if (fromNow) {
              const now = await replica.asyncTasks.ledger.get(task.taskId);
              if (now && done(now.status)) resolve(true);
            }
          })
          .catch(reject);
      }),
    ]);
    if (!reached && res.destroyed) return undefined;
    return (await replica.asyncTasks.ledger.get(task.taskId)) ?? task;
  } finally {
    finished = true;
    clearTimeout(timer);
    stop?.();
  }
}
