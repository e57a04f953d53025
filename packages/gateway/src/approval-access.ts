import { type Approvals, type Authorizer, GatewayError, type Principal, publicApproval } from '@openclaw/core';
import type { ApprovalRecord } from '@openclaw/protocol';

/** What the approval endpoints (WebSocket actions and REST) need. */
export interface ApprovalAccess {
  approvals: Approvals;
  authorizer: Authorizer;
}

/** The tenant's approvals (`approval:read`). */
export async function listApprovals(
  access: ApprovalAccess,
  principal: Principal,
  status: ApprovalRecord['status'] | 'all',
  limit: number,
): Promise<ApprovalRecord[]> {
  access.authorizer.require(principal, 'approval:read');
  const approvals = await access.approvals.list(principal.tenant, status, limit);
  return approvals.map((a) => publicApproval(a) as ApprovalRecord);
}

/** One approval: for `approval:read`, and for the principal whose message it holds. */
export async function getApproval(
  access: ApprovalAccess,
  principal: Principal,
  approvalId: string,
): Promise<ApprovalRecord> {
  const approval = await access.approvals.get(principal.tenant, approvalId);
  const mayRead = approval?.requestedBy === principal.id || access.authorizer.can(principal, 'approval:read');
  if (!approval || !mayRead) throw new GatewayError('NOT_FOUND', `no approval '${approvalId}'`);
  return publicApproval(approval) as ApprovalRecord;
}

/** A decision (`approval:decide`, and the approval's role or principals when it names them). */
export async function decideApproval(
  access: ApprovalAccess,
  principal: Principal,
  approvalId: string,
  decision: 'approve' | 'reject',
  reason: string | undefined,
): Promise<ApprovalRecord> {
  access.authorizer.require(principal, 'approval:decide');
  const approval = await access.approvals.decide(
    approvalId,
    {
      principal: principal.id,
      tenant: principal.tenant,
      holdsRole: (role) => access.authorizer.current.holdsRole(principal, role),
    },
    decision,
    reason,
  );
  return publicApproval(approval) as ApprovalRecord;
}
