import { createHash, randomUUID } from 'node:crypto';
import { GatewayError } from '@openclaw/protocol';
import type Redis from 'ioredis';
import type { AuditLog } from '../audit/audit-log';
import { MAX_STORED_OUTPUT_BYTES } from '../config/limits';
import { TIMINGS } from '../config/timings';
import type { RedisKeys } from '../redis/redis-keys';
import type { Direction } from './validator';

/**
 * Where an approval stands. `pending` waits for decisions; `approved` may be used once; `consumed`
 * has been used; `rejected` and `expired` are final refusals.
 */
export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'consumed';

/** What a `require-approval` verdict asks for. */
export interface ApprovalRequirement {
  /** How many different principals must approve. */
  approvers: number;
  /** The role each approver must hold (directly, or through a role that inherits it). */
  role?: string;
  /** When given, only these principals may decide. */
  principals?: string[];
  /** How long the approval waits for its decisions before it expires (and so rejects). */
  expiresMs: number;
}

/** Default approval: one approver with `approval:decide`, fifteen minutes. */
export const DEFAULT_APPROVAL: Readonly<ApprovalRequirement> = Object.freeze({ approvers: 1, expiresMs: 900_000 });

/** One approver's decision. */
export interface ApprovalDecision {
  principal: string;
  decision: 'approve' | 'reject';
  reason?: string;
  at: number;
}

/** An approval: the message it holds, what it needs, and the decisions so far. */
export interface Approval {
  approvalId: string;
  tenant: string;
  status: ApprovalStatus;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  /** SHA-256 of the message (direction, tenant, principal, agent, task, data): only that message may use it. */
  hash: string;
  direction: Direction;
  agent: string;
  task: string;
  /** The principal whose call it is. */
  requestedBy: string;
  /** The validator that asked for approval, and why. */
  validator: string;
  reason?: string;
  required: Omit<ApprovalRequirement, 'expiresMs'>;
  decisions: ApprovalDecision[];
  /** The message's payload, as it will go on once approved. */
  data: unknown;
  /** The task of the message (for a sync call, the call that asked first). */
  taskId: string;
  /** `sync`: a caller waits (on `origin`); `async`: the task waits in `input-required`. */
  mode: 'sync' | 'async';
  origin?: string;
  decidedAt?: number;
  consumedAt?: number;
}

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

/** What happened to an approval, as operators' events and the process's hooks are told. */
export type ApprovalChange = 'requested' | 'decision' | 'expired' | 'consumed';

/** The SHA-256 that binds an approval to one message: canonical JSON, keys sorted. */
export function approvalHash(message: {
  direction: Direction;
  tenant: string;
  principal: string;
  agent: string;
  task: string;
  data: unknown;
}): string {
  const canonical = canonicalJson([
    message.direction,
    message.tenant,
    message.principal,
    message.agent,
    message.task,
    message.data ?? null,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * Records a decision. KEYS: approval hash, pending index. ARGV: id, principal, decision, reason, now.
 * Returns {'ok', status, decisions JSON} or {'missing'} / {'ended', status} / {'expired'} / {'duplicate'}.
 */
const DECIDE = `
local h = redis.call('HMGET', KEYS[1], 'status', 'expiresAt', 'approvers', 'decisions')
if not h[1] then return {'missing'} end
local now = tonumber(ARGV[5])
if h[1] ~= 'pending' then return {'ended', h[1]} end
if now >= tonumber(h[2]) then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'updatedAt', ARGV[5])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {'expired'}
end
local decisions = cjson.decode(h[4])
for _, d in ipairs(decisions) do
  if d.principal == ARGV[2] then return {'duplicate', h[1]} end
end
local entry = {principal = ARGV[2], decision = ARGV[3], at = now}
if ARGV[4] ~= '' then entry.reason = ARGV[4] end
table.insert(decisions, entry)
local status = 'pending'
if ARGV[3] == 'reject' then
  status = 'rejected'
else
  local n = 0
  for _, d in ipairs(decisions) do if d.decision == 'approve' then n = n + 1 end end
  if n >= tonumber(h[3]) then status = 'approved' end
end
local encoded = cjson.encode(decisions)
redis.call('HSET', KEYS[1], 'status', status, 'decisions', encoded, 'updatedAt', ARGV[5])
if status ~= 'pending' then
  redis.call('HSET', KEYS[1], 'decidedAt', ARGV[5])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return {'ok', status, encoded}
`;

/**
 * Uses an approval for a message. KEYS: approval hash, pending index. ARGV: id, hash, now, task id of
 * an async task's later attempt ('' for none). Returns ok, again (the same async task's retry),
 * pending, missing, rejected, expired, consumed or mismatch.
 */
const CONSUME = `
local h = redis.call('HMGET', KEYS[1], 'status', 'expiresAt', 'hash', 'taskId', 'mode')
if not h[1] then return 'missing' end
if h[1] == 'pending' then
  if tonumber(ARGV[3]) >= tonumber(h[2]) then
    redis.call('HSET', KEYS[1], 'status', 'expired', 'updatedAt', ARGV[3])
    redis.call('ZREM', KEYS[2], ARGV[1])
    return 'expired'
  end
  if h[3] ~= ARGV[2] then return 'mismatch' end
  return 'pending'
end
if h[3] ~= ARGV[2] and (h[1] == 'approved' or h[1] == 'consumed') then return 'mismatch' end
if h[1] == 'consumed' and ARGV[4] ~= '' and h[5] == 'async' and h[4] == ARGV[4] then return 'again' end
if h[1] ~= 'approved' then return h[1] end
redis.call('HSET', KEYS[1], 'status', 'consumed', 'consumedAt', ARGV[3], 'updatedAt', ARGV[3])
return 'ok'
`;

/** Expires a pending approval past its time. KEYS: approval hash, pending index. ARGV: id, now. Returns 1 if it did. */
const EXPIRE = `
local h = redis.call('HMGET', KEYS[1], 'status', 'expiresAt')
if h[1] ~= 'pending' or tonumber(ARGV[2]) < tonumber(h[2]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'expired', 'updatedAt', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

interface ApprovalRedis extends Redis {
  ocApprovalDecide(
    key: string,
    pending: string,
    id: string,
    principal: string,
    decision: string,
    reason: string,
    now: number,
  ): Promise<string[]>;
  ocApprovalConsume(
    key: string,
    pending: string,
    id: string,
    hash: string,
    now: number,
    taskId: string,
  ): Promise<string>;
  ocApprovalExpire(key: string, pending: string, id: string, now: number): Promise<number>;
}

/** Options of {@link Approvals}. */
export interface ApprovalsOptions {
  redis: Redis;
  keys: RedisKeys;
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
 */
export class Approvals {
  private readonly redis: ApprovalRedis;
  private readonly keys: RedisKeys;
  private readonly audit: AuditLog | undefined;
  private readonly pollMs: number;
  private readonly waiters = new Map<string, Set<() => void>>();
  onChange: ((approval: Approval, change: ApprovalChange) => void) | undefined;

  constructor(options: ApprovalsOptions) {
    this.redis = options.redis as ApprovalRedis;
    this.keys = options.keys;
    this.audit = options.audit;
    this.pollMs = options.pollMs ?? 1000;
    this.onChange = options.onChange;
    if (typeof this.redis.ocApprovalDecide !== 'function') {
      this.redis.defineCommand('ocApprovalDecide', { numberOfKeys: 2, lua: DECIDE });
      this.redis.defineCommand('ocApprovalConsume', { numberOfKeys: 2, lua: CONSUME });
      this.redis.defineCommand('ocApprovalExpire', { numberOfKeys: 2, lua: EXPIRE });
    }
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
    const fields: Record<string, string> = {
      approvalId: approval.approvalId,
      tenant: approval.tenant,
      status: 'pending',
      createdAt: String(now),
      updatedAt: String(now),
      expiresAt: String(approval.expiresAt),
      hash: approval.hash,
      direction: approval.direction,
      agent: approval.agent,
      task: approval.task,
      requestedBy: approval.requestedBy,
      validator: approval.validator,
      reason: approval.reason ?? '',
      approvers: String(approval.required.approvers),
      required: JSON.stringify(approval.required),
      decisions: '[]',
      data,
      taskId: approval.taskId,
      mode: approval.mode,
      origin: approval.origin ?? '',
    };
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
    this.record(approval, 'approval.requested', approval.requestedBy, 'pending', {
      validator: approval.validator,
      reason: approval.reason ?? null,
      approvers: approval.required.approvers,
      role: approval.required.role ?? null,
      expiresAt: approval.expiresAt,
    });
    this.changed(approval, 'requested');
    return approval;
  }

  /** An approval of a tenant, or undefined. */
  async get(tenant: string, approvalId: string): Promise<Approval | undefined> {
    const h = await this.redis.hgetall(this.keys.approval(tenant, approvalId)).catch(unavailable);
    return decode(h);
  }

  /**
   * A tenant's approvals: pending ones soonest to expire first (the default), or, for another status
   * or `all`, the newest first.
   */
  async list(tenant: string, status: ApprovalStatus | 'all' = 'pending', limit = 100): Promise<Approval[]> {
    const now = Date.now();
    if (status === 'pending') {
      const ids = await this.redis.zrange(this.keys.approvalsPending(tenant), 0, limit - 1).catch(unavailable);
      const found = await this.many(tenant, ids);
      // Past their time: expired now, by whoever looks first.
      for (const a of found) if (a.status === 'pending' && a.expiresAt <= now) await this.expire(tenant, a.approvalId);
      return found.filter((a) => a.status === 'pending' && a.expiresAt > now);
    }
    const out: Approval[] = [];
    for (let start = 0; out.length < limit && start < 10_000; start += 200) {
      const ids = await this.redis.zrevrange(this.keys.approvalsIndex(tenant), start, start + 199).catch(unavailable);
      if (ids.length === 0) break;
      for (const a of await this.many(tenant, ids)) {
        const shown = a.status === 'pending' && a.expiresAt <= now ? { ...a, status: 'expired' as const } : a;
        if (status === 'all' || shown.status === status) out.push(shown);
        if (out.length >= limit) break;
      }
    }
    return out;
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
      this.record(approval, 'approval.decision-refused', decider.principal, 'forbidden', { decision, why });
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
    const [result, status, decisions] = await this.redis
      .ocApprovalDecide(
        key,
        this.keys.approvalsPending(decider.tenant),
        approvalId,
        decider.principal,
        decision,
        reason ?? '',
        now,
      )
      .catch(unavailable);
    switch (result) {
      case 'missing':
        throw new GatewayError('NOT_FOUND', `no approval '${approvalId}'`);
      case 'expired':
        this.expired({ ...approval, status: 'expired', updatedAt: now });
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
    this.record(updated, 'approval.decision', decider.principal, decision, {
      reason: reason ?? null,
      approvals,
      required: updated.required.approvers,
      status: updated.status,
    });
    if (updated.status === 'approved' || updated.status === 'rejected') {
      this.record(updated, `approval.${updated.status}`, decider.principal, updated.status, {
        by: updated.decisions.map((d) => d.principal).join(' '),
      });
    }
    this.changed(updated, 'decision');
    return updated;
  }

  /**
   * Uses an approval for a message: only an approved approval whose hash is the message's, once.
   * `taskId`, for an async task's later attempt, lets the same task use it again.
   */
  async consume(tenant: string, approvalId: string, hash: string, by: string, taskId?: string): Promise<ConsumeResult> {
    const now = Date.now();
    const result = (await this.redis
      .ocApprovalConsume(
        this.keys.approval(tenant, approvalId),
        this.keys.approvalsPending(tenant),
        approvalId,
        hash,
        now,
        taskId ?? '',
      )
      .catch(unavailable)) as ConsumeResult['result'];
    const approval = await this.get(tenant, approvalId);
    if (!approval) return { result: 'missing' };
    switch (result) {
      case 'ok':
        this.record(approval, 'approval.consumed', by, 'ok', { taskId: taskId ?? null });
        this.changed(approval, 'consumed');
        return { result, approval };
      case 'again':
        this.record(approval, 'approval.consumed', by, 'again', { taskId: taskId ?? null });
        return { result, approval };
      case 'pending':
        return { result, approval };
      case 'expired':
        this.expired(approval);
        return { result, approval };
      default:
        // Refused: another message, a second use, or a decision against it.
        this.record(approval, 'approval.use-refused', by, result, { taskId: taskId ?? null });
        return { result, approval };
    }
  }

  /** Ends a pending approval past its time. @returns the approval as it now is. */
  async expire(tenant: string, approvalId: string): Promise<Approval | undefined> {
    const done = await this.redis
      .ocApprovalExpire(
        this.keys.approval(tenant, approvalId),
        this.keys.approvalsPending(tenant),
        approvalId,
        Date.now(),
      )
      .catch(unavailable);
    const approval = await this.get(tenant, approvalId);
    if (done === 1 && approval) this.expired(approval);
    return approval;
  }

  /**
   * Waits for an approval to be decided, until `until` (or its expiry, which it then records).
   * `known`: the approval as last seen, what the wait goes on while Redis cannot be read.
   * Woken at once by {@link notify}; looks in Redis every `pollMs` besides (a notice may be lost).
   * `signal` ends the wait early (the process is shutting down).
   * @returns the approval as it stands at the end (still `pending` when `until` or the signal came first).
   */
  async wait(
    tenant: string,
    approvalId: string,
    until: number,
    known?: Approval,
    signal?: AbortSignal,
  ): Promise<Approval | undefined> {
    let last = known;
    for (;;) {
      if (signal?.aborted) return last;
      // Redis out of reach: keep waiting on what was last seen (until the deadline at most).
      let approval = await this.get(tenant, approvalId).catch(() => last);
      last = approval;
      const now = Date.now();
      if (approval && approval.status === 'pending' && now >= approval.expiresAt) {
        approval = await this.expire(tenant, approvalId).catch(() => approval);
      }
      if (approval?.status !== 'pending' || now >= until) return approval;
      const wakeAt = Math.min(until, approval.expiresAt, now + this.pollMs);
      await new Promise<void>((resolve) => {
        let set = this.waiters.get(approvalId);
        if (!set) {
          set = new Set();
          this.waiters.set(approvalId, set);
        }
        const waiters = set;
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          waiters.delete(done);
          if (waiters.size === 0) this.waiters.delete(approvalId);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, wakeAt - now));
        waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** Pending approvals (not yet expired) of every tenant that has had approvals. */
  async pendingCounts(): Promise<Record<string, number>> {
    const tenants = await this.redis.smembers(this.keys.approvalTenants());
    if (tenants.length === 0) return {};
    const now = Date.now();
    const pipeline = this.redis.pipeline();
    for (const tenant of tenants) pipeline.zcount(this.keys.approvalsPending(tenant), `(${now}`, '+inf');
    const results = (await pipeline.exec()) ?? [];
    return Object.fromEntries(tenants.map((tenant, i) => [tenant, Number(results[i]?.[1] ?? 0)]));
  }

  /** Wakes the calls on this process waiting for an approval (a decision was made, maybe elsewhere). */
  notify(approvalId: string): void {
    for (const wake of [...(this.waiters.get(approvalId) ?? [])]) wake();
  }

  /** How many calls on this process wait for approvals. */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  private expired(approval: Approval): void {
    this.record(approval, 'approval.expired', approval.requestedBy, 'expired', { expiresAt: approval.expiresAt });
    this.changed(approval, 'expired');
  }

  private async many(tenant: string, ids: string[]): Promise<Approval[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.approval(tenant, id));
    const results = (await pipeline.exec()) ?? [];
    const out: Approval[] = [];
    const gone: string[] = [];
    results.forEach(([error, h], i) => {
      const approval = error ? undefined : decode(h as Record<string, string>);
      if (approval) out.push(approval);
      else if (!error) gone.push(ids[i]!);
    });
    if (gone.length > 0) {
      // Records past their retention: drop them from the indexes.
      await this.redis
        .multi()
        .zrem(this.keys.approvalsPending(tenant), ...gone)
        .zrem(this.keys.approvalsIndex(tenant), ...gone)
        .exec()
        .catch(() => undefined);
    }
    return out;
  }

  private record(
    approval: Approval,
    type: string,
    principal: string,
    outcome: string,
    details: Record<string, unknown>,
  ): void {
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

  private changed(approval: Approval, change: ApprovalChange): void {
    const frame = {
      event: change === 'requested' ? 'approval.requested' : 'approval.updated',
      ...publicApproval(approval),
    };
    void this.redis.publish(this.keys.operatorEvents(approval.tenant), JSON.stringify(frame)).catch(() => undefined);
    if (change !== 'requested') this.notify(approval.approvalId);
    try {
      this.onChange?.(approval, change);
    } catch {
      // A hook's failure must not undo a recorded change.
    }
  }
}

/** Redis could not be reached: a retryable error, never a refusal. */
function unavailable(error: unknown): never {
  throw new GatewayError(
    'UNAVAILABLE',
    'approvals cannot be read or changed now (Redis is unavailable); retry shortly',
    {
      cause: error,
    },
  );
}

/** An approval as clients see it (everything but the tenant-internal fields). */
export function publicApproval(approval: Approval): Record<string, unknown> {
  const out: Record<string, unknown> = {
    approvalId: approval.approvalId,
    status: approval.status,
    agent: approval.agent,
    task: approval.task,
    direction: approval.direction,
    requestedBy: approval.requestedBy,
    validator: approval.validator,
    required: approval.required,
    approvals: approval.decisions.filter((d) => d.decision === 'approve').length,
    decisions: approval.decisions,
    createdAt: approval.createdAt,
    updatedAt: approval.updatedAt,
    expiresAt: approval.expiresAt,
    taskId: approval.taskId,
    mode: approval.mode,
    hash: approval.hash,
    data: approval.data,
  };
  if (approval.reason !== undefined) out.reason = approval.reason;
  if (approval.decidedAt !== undefined) out.decidedAt = approval.decidedAt;
  if (approval.consumedAt !== undefined) out.consumedAt = approval.consumedAt;
  return out;
}

function requiredOf(requirement: ApprovalRequirement): Approval['required'] {
  const out: Approval['required'] = { approvers: requirement.approvers };
  if (requirement.role !== undefined) out.role = requirement.role;
  if (requirement.principals !== undefined) out.principals = requirement.principals;
  return out;
}

function decode(h: Record<string, string>): Approval | undefined {
  if (h.approvalId === undefined || h.status === undefined) return undefined;
  const parse = <T>(text: string | undefined, fallback: T): T => {
    if (text === undefined || text === '') return fallback;
    try {
      return JSON.parse(text) as T;
    } catch {
      return fallback;
    }
  };
  const approval: Approval = {
    approvalId: h.approvalId,
    tenant: h.tenant ?? '',
    status: h.status as ApprovalStatus,
    createdAt: Number(h.createdAt),
    updatedAt: Number(h.updatedAt),
    expiresAt: Number(h.expiresAt),
    hash: h.hash ?? '',
    direction: h.direction === 'response' ? 'response' : 'request',
    agent: h.agent ?? '',
    task: h.task ?? '',
    requestedBy: h.requestedBy ?? '',
    validator: h.validator ?? '',
    required: parse(h.required, { approvers: Number(h.approvers ?? 1) }),
    // An empty Lua table encodes as an object: no decisions.
    decisions: Array.isArray(parse(h.decisions, [])) ? parse<ApprovalDecision[]>(h.decisions, []) : [],
    data: parse<unknown>(h.data, null),
    taskId: h.taskId ?? '',
    mode: h.mode === 'async' ? 'async' : 'sync',
  };
  if (h.reason) approval.reason = h.reason;
  if (h.origin) approval.origin = h.origin;
  if (h.decidedAt) approval.decidedAt = Number(h.decidedAt);
  if (h.consumedAt) approval.consumedAt = Number(h.consumedAt);
  return approval;
}
