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
  waitMs?: number,
): Promise<LedgerTask | undefined> {
  if (done(task.status)) return task;
  let stop: (() => void) | undefined;
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  const hungUp = new Promise<false>((resolve) => res.once('close', () => resolve(false)));
  try {
    const reached = await Promise.race([
      hungUp,
      new Promise<boolean>((resolve, reject) => {
        if (waitMs !== undefined) timer = setTimeout(() => resolve(false), waitMs);
        replica.taskEvents
          // Every event from the task's start: its end may have come before this.
          .follow(caller.principal, task, '0-0', (frame) => {
            if (frame.event === 'task.status' && done(frame.status as TaskState)) resolve(true);
          })
          .then((stopping) => {
            // Hung up while the watch was being set up: stop it now.
            if (finished) stopping();
            else stop = stopping;
          }, reject);
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
