import { randomUUID } from 'node:crypto';
import { GatewayError } from '@openclaw/protocol';
import type { AuditLog } from '../audit/audit-log';
import type { BusTopics } from '../bus/cluster-bus';
import { MAX_STORED_OUTPUT_BYTES } from '../config/limits';
import { TIMINGS } from '../config/timings';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import { ApprovalListing } from './approval-listing';
import { type ApprovalChange, ApprovalNotices } from './approval-notices';
import {
  type Approval,
  type ApprovalDecision,
  type ApprovalRequirement,
  type ApprovalStatus,
  approvalFields,
  approvalsUnavailable,
  decodeApproval,
} from './approval-record';
import { APPROVAL_SCRIPTS } from './approval-scripts';
import { ApprovalWaits } from './approval-waits';
import type { Direction } from './validator';

/** A new approval to ask for. */
export interface ApprovalRequest {
  tenant: string;
  direction: Direction;
  agent: string;
  task: string;
  requestedBy: string;
  validator: string;
  reason?: string;
  requirement: ApprovalRequirement;
  hash: string;
  data: unknown;
  taskId: string;
  mode: 'sync' | 'async';
  origin?: string;
}

/** Who decides, and what they hold. */
export interface Decider {
  principal: string;
  tenant: string;
  /** Whether the decider holds a role (directly or by inheritance). */
  holdsRole(role: string): boolean;
}

/** What using an approval for a message came to. */
export type ConsumeResult =
  | { result: 'ok' | 'again'; approval: Approval }
  | { result: 'pending'; approval: Approval }
  | { result: 'missing' | 'rejected' | 'expired' | 'consumed' | 'mismatch'; approval?: Approval };

/** Options of {@link Approvals}. */
export interface ApprovalsOptions {
  redis: RedisClient;
  keys: RedisKeys;
  /** Where operators hear of approvals asked for and decided. */
  topics: BusTopics;
  /** Writes every step to the audit trail. */
  audit?: AuditLog;
  /** How often a waiting call looks at its approval in Redis (a missed notice costs at most this). Default 1000 ms. */
  pollMs?: number;
  /** Told of every change (after it is in Redis): wakes a parked task, or the replica of a waiting call. */
  onChange?: (approval: Approval, change: ApprovalChange) => void;
}

/**
 * Approvals: messages that a `require-approval` verdict parked, durable in Redis, that operators of the
 * tenant on any replica list and decide. An approval holds the message's hash, so it lets through
 * that message only, and only once. Each change is one Lua script; each step is audited; operators
 * are told on the tenant's operator channel.
 *
 * An approval's record is in `approval-record.ts` and its scripts in `approval-scripts.ts`; listing
 * is {@link ApprovalListing}'s, waiting {@link ApprovalWaits}', and telling {@link ApprovalNotices}'.
 */
export class Approvals {
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  private readonly waits: ApprovalWaits;
  private readonly notices: ApprovalNotices;
  private readonly listing: ApprovalListing;

  constructor(options: ApprovalsOptions) {
    const { redis, keys } = options;
    this.redis = redis;
    this.keys = keys;
    this.waits = new ApprovalWaits({
      pollMs: options.pollMs ?? 1000,
      read: (tenant, approvalId) => this.get(tenant, approvalId),
      expire: (tenant, approvalId) => this.expire(tenant, approvalId),
    });
    this.notices = new ApprovalNotices({
      topics: options.topics,
      keys,
      ...(options.audit ? { audit: options.audit } : {}),
      waits: this.waits,
      ...(options.onChange ? { onChange: options.onChange } : {}),
    });
    this.listing = new ApprovalListing({
      redis,
      keys,
      expire: (tenant, approvalId) => this.expire(tenant, approvalId),
    });
  }

  /**
   * Parks a message for approval.
   * @throws {GatewayError} `PAYLOAD_TOO_LARGE` when the message is too large to keep; `UNAVAILABLE` without Redis.
   */
  async request(input: ApprovalRequest): Promise<Approval> {
    const data = JSON.stringify(input.data ?? null);
    if (Buffer.byteLength(data) > MAX_STORED_OUTPUT_BYTES) {
      throw new GatewayError(
        'PAYLOAD_TOO_LARGE',
        `the message needs an approval, and is larger than the ${MAX_STORED_OUTPUT_BYTES} bytes an approval can hold`,
      );
    }
    const now = Date.now();
    const approval: Approval = {
      approvalId: randomUUID(),
      tenant: input.tenant,
      status: 'pending',
      createdAt: now,
      updatedAt: now,
      expiresAt: now + input.requirement.expiresMs,
      hash: input.hash,
      direction: input.direction,
      agent: input.agent,
      task: input.task,
      requestedBy: input.requestedBy,
      validator: input.validator,
      required: requiredOf(input.requirement),
      decisions: [],
      data: input.data ?? null,
      taskId: input.taskId,
      mode: input.mode,
    };
    if (input.reason !== undefined) approval.reason = input.reason;
    if (input.origin !== undefined) approval.origin = input.origin;
    const key = this.keys.approval(input.tenant, approval.approvalId);
    const fields = approvalFields(approval, data);
    await this.redis
      .multi()
      .hset(key, fields)
      .pexpire(key, input.requirement.expiresMs + TIMINGS.approvalRetentionMs)
      .zadd(this.keys.approvalsPending(input.tenant), approval.expiresAt, approval.approvalId)
      .zadd(this.keys.approvalsIndex(input.tenant), now, approval.approvalId)
      .zremrangebyscore(
        this.keys.approvalsIndex(input.tenant),
        '-inf',
        now - TIMINGS.approvalRetentionMs - 31 * 86_400_000,
      )
      .exec()
      .catch((error: unknown) => {
        throw new GatewayError(
          'UNAVAILABLE',
          'the approval could not be stored (Redis is unavailable); retry shortly',
          {
            cause: error,
          },
        );
      });
    void this.redis.sadd(this.keys.approvalTenants(), input.tenant).catch(() => undefined);
    this.notices.record(approval, 'approval.requested', approval.requestedBy, 'pending', {
      validator: approval.validator,
      reason: approval.reason ?? null,
      approvers: approval.required.approvers,
      role: approval.required.role ?? null,
      expiresAt: approval.expiresAt,
    });
    this.notices.changed(approval, 'requested');
    return approval;
  }

  /** An approval of a tenant, or undefined. */
  async get(tenant: string, approvalId: string): Promise<Approval | undefined> {
    const h = await this.redis.hgetall(this.keys.approval(tenant, approvalId)).catch(approvalsUnavailable);
    return decodeApproval(h);
  }

  /**
   * A tenant's approvals: pending ones soonest to expire first (the default), or, for another status
   * or `all`, the newest first.
   */
  list(tenant: string, status: ApprovalStatus | 'all' = 'pending', limit = 100): Promise<Approval[]> {
    return this.listing.list(tenant, status, limit);
  }

  /**
   * Records a decision. A reject ends the approval; it is approved when enough principals approved.
   * @throws {GatewayError} `NOT_FOUND`; `FORBIDDEN` (the caller's own message, or not an allowed
   * approver); `CONFLICT` (already decided by this principal, or no longer pending).
   */
  async decide(
    approvalId: string,
    decider: Decider,
    decision: 'approve' | 'reject',
    reason?: string,
  ): Promise<Approval> {
    const approval = await this.get(decider.tenant, approvalId);
    if (!approval) throw new GatewayError('NOT_FOUND', `no approval '${approvalId}'`);
    const refuse = (why: string): never => {
      this.notices.record(approval, 'approval.decision-refused', decider.principal, 'forbidden', { decision, why });
      throw new GatewayError('FORBIDDEN', why);
    };
    if (decider.principal === approval.requestedBy) refuse('a principal may not decide on its own message');
    if (approval.required.principals && !approval.required.principals.includes(decider.principal)) {
      refuse(`this approval may be decided only by ${approval.required.principals.join(', ')}`);
    }
    if (approval.required.role !== undefined && !decider.holdsRole(approval.required.role)) {
      refuse(`deciding this approval needs the role '${approval.required.role}'`);
    }
    const now = Date.now();
    const key = this.keys.approval(decider.tenant, approvalId);
    const [result, status, decisions] = await APPROVAL_SCRIPTS.decide
      .run<string[]>(
        this.redis,
        key,
        this.keys.approvalsPending(decider.tenant),
        approvalId,
        decider.principal,
        decision,
        reason ?? '',
        now,
      )
      .catch(approvalsUnavailable);
    switch (result) {
      case 'missing':
        throw new GatewayError('NOT_FOUND', `no approval '${approvalId}'`);
      case 'expired':
        this.notices.expired({ ...approval, status: 'expired', updatedAt: now });
        throw new GatewayError('CONFLICT', `approval '${approvalId}' expired before it was decided`);
      case 'ended':
        throw new GatewayError('CONFLICT', `approval '${approvalId}' is no longer pending (${status})`);
      case 'duplicate':
        throw new GatewayError('CONFLICT', `${decider.principal} has already decided on approval '${approvalId}'`);
    }
    const updated: Approval = {
      ...approval,
      status: status as ApprovalStatus,
      updatedAt: now,
      decisions: JSON.parse(decisions ?? '[]') as ApprovalDecision[],
    };
    if (status !== 'pending') updated.decidedAt = now;
    const approvals = updated.decisions.filter((d) => d.decision === 'approve').length;
    this.notices.record(updated, 'approval.decision', decider.principal, decision, {
      reason: reason ?? null,
      approvals,
      required: updated.required.approvers,
      status: updated.status,
    });
    if (updated.status === 'approved' || updated.status === 'rejected') {
      this.notices.record(updated, `approval.${updated.status}`, decider.principal, updated.status, {
        by: updated.decisions.map((d) => d.principal).join(' '),
      });
    }
    this.notices.changed(updated, 'decision');
    return updated;
  }

  /**
   * Uses an approval for a message: only an approved approval whose hash is the message's, once.
   * `taskId`, for an async task's later attempt, lets the same task use it again.
   */
  async consume(tenant: string, approvalId: string, hash: string, by: string, taskId?: string): Promise<ConsumeResult> {
    const now = Date.now();
    const result = (await APPROVAL_SCRIPTS.consume
      .run<string>(
        this.redis,
        this.keys.approval(tenant, approvalId),
        this.keys.approvalsPending(tenant),
        approvalId,
        hash,
        now,
        taskId ?? '',
      )
      .catch(approvalsUnavailable)) as ConsumeResult['result'];
    const approval = await this.get(tenant, approvalId);
    if (!approval) return { result: 'missing' };
    switch (result) {
      case 'ok':
        this.notices.record(approval, 'approval.consumed', by, 'ok', { taskId: taskId ?? null });
        this.notices.changed(approval, 'consumed');
        return { result, approval };
      case 'again':
        this.notices.record(approval, 'approval.consumed', by, 'again', { taskId: taskId ?? null });
        return { result, approval };
      case 'pending':
        return { result, approval };
      case 'expired':
        this.notices.expired(approval);
        return { result, approval };
      default:
        // Refused: another message, a second use, or a decision against it.
        this.notices.record(approval, 'approval.use-refused', by, result, { taskId: taskId ?? null });
        return { result, approval };
    }
  }

  /** Ends a pending approval past its time. @returns the approval as it now is. */
  async expire(tenant: string, approvalId: string): Promise<Approval | undefined> {
    const done = await APPROVAL_SCRIPTS.expire
      .run<number>(
        this.redis,
        this.keys.approval(tenant, approvalId),
        this.keys.approvalsPending(tenant),
        approvalId,
        Date.now(),
      )
      .catch(approvalsUnavailable);
    const approval = await this.get(tenant, approvalId);
    if (done === 1 && approval) this.notices.expired(approval);
    return approval;
  }

  /**
   * Waits for an approval to be decided, until `until` (or its expiry, which it then records).
   * `known`: the approval as last seen, what the wait goes on while Redis cannot be read.
   * Woken at once by {@link notify}; looks in Redis every `pollMs` besides (a notice may be lost).
   * `signal` ends the wait early (the process is shutting down).
   * @returns the approval as it stands at the end (still `pending` when `until` or the signal came first).
   */
  wait(
    tenant: string,
    approvalId: string,
    until: number,
    known?: Approval,
    signal?: AbortSignal,
  ): Promise<Approval | undefined> {
    return this.waits.wait(tenant, approvalId, until, known, signal);
  }

  /** Pending approvals (not yet expired) of every tenant that has had approvals. */
  pendingCounts(): Promise<Record<string, number>> {
    return this.listing.pendingCounts();
  }

  /** Wakes the calls on this process waiting for an approval (a decision was made, maybe elsewhere). */
  notify(approvalId: string): void {
    this.waits.notify(approvalId);
  }

  /** How many calls on this process wait for approvals. */
  get waiting(): number {
    return this.waits.waiting;
  }
}

function requiredOf(requirement: ApprovalRequirement): Approval['required'] {
  const out: Approval['required'] = { approvers: requirement.approvers };
  if (requirement.role !== undefined) out.role = requirement.role;
  if (requirement.principals !== undefined) out.principals = requirement.principals;
  return out;
}
