import type { TaskProgressEvent, TaskStatusEvent } from './client-events';

/** @internal One {@link GatewayClient.waitForTask} in progress. */
export interface TaskWait {
  onStatus(event: TaskStatusEvent): void;
  onProgress(event: TaskProgressEvent): void;
  /** Subscribes to the task again after the client reconnected. */
  onConnected(): void;
}

/**
 * @internal The task waits of one client, by task id. The client hands each task event to the waits
 * of its task only, and tells every wait when it reconnects: a client waiting on thousands of tasks
 * does the work of one lookup per event, and adds no listener per wait to its own events.
 */
export class TaskWaits {
  private readonly byTask = new Map<string, Set<TaskWait>>();

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
