import { GatewayError } from '@openclaw/protocol';
import type { LedgerTask } from './ledger-record';
import type { TaskLedger } from './task-ledger';

/** Who asks: the principal, its tenant, and whether it may see every task of the tenant. */
export interface TaskViewer {
  principal: string;
  tenant: string;
  /** Holds `task:read:any`: an operator. */
  any: boolean;
}

/** Whether a viewer may see a task: one of its tenant's, and its own unless it is an operator. */
export function visible(task: LedgerTask, viewer: TaskViewer): boolean {
  return task.tenant === viewer.tenant && (viewer.any || task.principal === viewer.principal);
}

/**
 * A task the viewer may see.
 * @throws {GatewayError} `NOT_FOUND` otherwise (another tenant's or principal's task looks absent).
 */
export async function visibleTask(ledger: TaskLedger, taskId: string, viewer: TaskViewer): Promise<LedgerTask> {
  const task = await ledger.get(taskId);
  if (!task || !visible(task, viewer)) throw new GatewayError('NOT_FOUND', `no task '${taskId}'`);
  return task;
}
