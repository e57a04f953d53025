import type { AuditLog } from '../audit/audit-log';
import type { BusTopics } from '../bus/cluster-bus';
import type { RedisKeys } from '../redis/redis-keys';
import { type Approval, publicApproval } from './approval-record';
import type { ApprovalWaits } from './approval-waits';

/** What happened to an approval, as operators' events and the process's hooks are told. */
export type ApprovalChange = 'requested' | 'decision' | 'expired' | 'consumed';

/** Options of {@link ApprovalNotices}. */
export interface ApprovalNoticesOptions {
  /** Where operators hear of them (the tenant's operator topic). */
  topics: BusTopics;
  keys: RedisKeys;
  /** Writes every step to the audit trail. */
  audit?: AuditLog;
  /** The calls on this process waiting for approvals, woken by every change. */
  waits: ApprovalWaits;
  /** Told of every change (after it is in Redis): wakes a parked task, or the replica of a waiting call. */
  onChange?: (approval: Approval, change: ApprovalChange) => void;
}

/**
 * Who hears of an approval's steps once they are in Redis: the tenant's audit trail (every step,
 * refusals included), its operators (on the tenant's operator topic of the bus), the calls on this process
 * waiting for it, and the process's hook.
 */
export class ApprovalNotices {
  private readonly topics: BusTopics;
  private readonly keys: RedisKeys;
  private readonly audit: AuditLog | undefined;
  private readonly waits: ApprovalWaits;
  private readonly onChange: ((approval: Approval, change: ApprovalChange) => void) | undefined;

  constructor(options: ApprovalNoticesOptions) {
    this.topics = options.topics;
    this.keys = options.keys;
    this.audit = options.audit;
    this.waits = options.waits;
    this.onChange = options.onChange;
  }

  /** Writes a step of an approval to its tenant's audit trail. */
  record(approval: Approval, type: string, principal: string, outcome: string, details: Record<string, unknown>): void {
    this.audit?.record(approval.tenant, {
      type,
      principal,
      outcome,
      details: {
        approvalId: approval.approvalId,
        agent: approval.agent,
        task: approval.task,
        direction: approval.direction,
        taskId: approval.taskId,
        hash: approval.hash,
        ...details,
      },
    });
  }

  /** Tells operators, waiting calls and the hook of a change. */
  changed(approval: Approval, change: ApprovalChange): void {
    const frame = {
      event: change === 'requested' ? 'approval.requested' : 'approval.updated',
      ...publicApproval(approval),
    };
    void this.topics.publish(this.keys.operatorEvents(approval.tenant), JSON.stringify(frame)).catch(() => undefined);
    if (change !== 'requested') this.waits.notify(approval.approvalId);
    try {
      this.onChange?.(approval, change);
    } catch {
      // A hook's failure must not undo a recorded change.
    }
  }

  /** Records and tells that an approval expired. */
  expired(approval: Approval): void {
    this.record(approval, 'approval.expired', approval.requestedBy, 'expired', { expiresAt: approval.expiresAt });
    this.changed(approval, 'expired');
  }
}
