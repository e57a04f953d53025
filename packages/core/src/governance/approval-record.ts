import { createHash } from 'node:crypto';
import { GatewayError } from '@openclaw/protocol';
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

/** The fields of a new approval's hash; `data` is the message's payload as JSON. */
export function approvalFields(approval: Approval, data: string): Record<string, string> {
  return {
    approvalId: approval.approvalId,
    tenant: approval.tenant,
    status: approval.status,
    createdAt: String(approval.createdAt),
    updatedAt: String(approval.updatedAt),
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
}

/** The approval an approval's hash holds, or undefined if it holds none. */
export function decodeApproval(h: Record<string, string>): Approval | undefined {
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

/** Redis could not be reached: a retryable error, never a refusal. Thrown by reads and changes of approvals. */
export function approvalsUnavailable(error: unknown): never {
  throw new GatewayError(
    'UNAVAILABLE',
    'approvals cannot be read or changed now (Redis is unavailable); retry shortly',
    {
      cause: error,
    },
  );
}
