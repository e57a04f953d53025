import { GatewayError, type TaskRecord } from '@openclaw/protocol';
import { type CallRecord, type CallRecords, publicTaskRecord } from './call-records';
import { type LedgerTask, publicLedgerRecord } from './ledger-record';
import type { TaskLedger } from './task-ledger';
import type { TaskViewer } from './task-viewer';

/**
 * A task as the gateway finds it by its id, whichever way it runs: an async task or workflow, kept in
 * the ledger with its history, or a sync call, kept in the call records for as long as it serves.
 */
export type FoundTask = { mode: 'async'; task: LedgerTask } | { mode: 'sync'; record: CallRecord };

/**
 * The one place where a task is looked up by id. Sync calls and async tasks are stored apart (a sync
 * call's record is a compact entry kept minutes, an async task's a hash with its event stream, kept
 * for its retention), but they are one kind of thing to a client: one id space (UUIDs), one record
 * shape ({@link TaskRecord}, with `mode`), one rule of who may see them.
 */
export class TaskDirectory {
  constructor(
    private readonly ledger: TaskLedger,
    private readonly calls: CallRecords,
  ) {}

  /**
   * The task of that id, if any.
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
   */
  async find(taskId: string): Promise<FoundTask | undefined> {
    const task = await this.ledger.get(taskId);
    if (task) return { mode: 'async', task };
    const record = await this.calls.get(taskId);
    return record ? { mode: 'sync', record } : undefined;
  }

  /**
   * The task of that id, if the viewer may see it: one of its tenant's, and its own unless it is an
   * operator (`task:read:any`), who sees the tenant's async tasks. A sync call is only its caller's.
   * @throws {GatewayError} `NOT_FOUND` otherwise (another tenant's or principal's task looks absent).
   */
  async visible(taskId: string, viewer: TaskViewer): Promise<FoundTask> {
    const found = await this.find(taskId);
    if (!found || !canSee(found, viewer)) throw new GatewayError('NOT_FOUND', `no task '${taskId}'`);
    return found;
  }
}

/** Whether a viewer may see a task found by {@link TaskDirectory.find}. */
export function canSee(found: FoundTask, viewer: TaskViewer): boolean {
  if (found.mode === 'async') {
    return found.task.tenant === viewer.tenant && (viewer.any || found.task.principal === viewer.principal);
  }
  return found.record.tenant === viewer.tenant && found.record.principal === viewer.principal;
}

/** The record of a task as clients see it (`task.get`). */
export function publicRecord(found: FoundTask): TaskRecord {
  return found.mode === 'async' ? publicLedgerRecord(found.task) : publicTaskRecord(found.record);
}
