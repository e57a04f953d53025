import type { TaskProgressEvent, TaskStatusEvent } from './client-events';
import type { TaskOutcome, WaitOptions } from './client-requests';
import { GatewayError } from './errors';

/** The statuses a task ends in. */
const TERMINAL_STATES: ReadonlySet<string> = new Set(['completed', 'failed', 'canceled', 'rejected']);

/** @internal One {@link GatewayClient.waitForTask} in progress. */
export interface TaskWait {
  onStatus(event: TaskStatusEvent): void;
  onProgress(event: TaskProgressEvent): void;
  /** Subscribes to the task again after the client reconnected. */
  onConnected(): void;
}

/**
 * @internal The task waits of one client, by task id, and how each waits. The client hands each task
 * event to the waits of its task only, and tells every wait when it reconnects: a client waiting on thousands of tasks
 * does the work of one lookup per event, and adds no listener per wait to its own events.
 */
export class TaskWaits {
  private readonly byTask = new Map<string, Set<TaskWait>>();

  /**
   * Resolves when task `taskId` ends, with how it ended (see {@link GatewayClient.waitForTask}).
   * `subscribe(after)` subscribes the connection to the task's events after cursor `after`: at once, and
   * again after each reconnection, from the last event seen.
   */
  wait(taskId: string, subscribe: (after: string) => Promise<unknown>, options: WaitOptions): Promise<TaskOutcome> {
    return new Promise<TaskOutcome>((resolve, reject) => {
      let cursor = '0-0';
      const seen = (eventCursor: string | undefined): boolean => {
        if (eventCursor === undefined) return false;
        if (!cursorAfter(eventCursor, cursor)) return true;
        cursor = eventCursor;
        return false;
      };
      const onStatus = (event: TaskStatusEvent): void => {
        if (seen(event.cursor)) return;
        options.onStatus?.(event);
        if (!TERMINAL_STATES.has(event.status)) return;
        const outcome: TaskOutcome = { taskId, status: event.status as TaskOutcome['status'] };
        if (event.output !== undefined) outcome.output = event.output;
        if (event.error !== undefined) outcome.error = event.error;
        done();
        resolve(outcome);
      };
      const onProgress = (event: TaskProgressEvent): void => {
        if (event.id !== undefined || seen(event.cursor)) return;
        options.onProgress?.(event.progress);
      };
      const resubscribe = (): void => {
        subscribe(cursor).catch((error: unknown) => {
          if (error instanceof GatewayError && error.code === 'NOT_FOUND') {
            done();
            reject(error);
          }
          // Not connected now: the next 'connected' subscribes again.
        });
      };
      const onAbort = (): void => {
        done();
        reject(new GatewayError('CANCELED', 'stopped waiting for the task', { retryable: false }));
      };
      let remove = (): void => undefined;
      const done = (): void => {
        remove();
        options.signal?.removeEventListener('abort', onAbort);
      };
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      remove = this.add(taskId, { onStatus, onProgress, onConnected: resubscribe });
      resubscribe();
    });
  }

  /** Adds a wait for `taskId`. @returns its removal (idempotent). */
  add(taskId: string, wait: TaskWait): () => void {
    let waits = this.byTask.get(taskId);
    if (!waits) {
      waits = new Set();
      this.byTask.set(taskId, waits);
    }
    waits.add(wait);
    return () => {
      const current = this.byTask.get(taskId);
      if (!current?.delete(wait)) return;
      if (current.size === 0) this.byTask.delete(taskId);
    };
  }

  /** The waits of one task, as a copy: a wait may remove itself while it is called. */
  of(taskId: string): TaskWait[] {
    const waits = this.byTask.get(taskId);
    return waits ? [...waits] : [];
  }

  /** Every wait, as a copy. */
  all(): TaskWait[] {
    return [...this.byTask.values()].flatMap((waits) => [...waits]);
  }
}

/** Whether event cursor (stream id) `a` comes after `b`. */
function cursorAfter(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}
