import { ApprovalDecideParamsSchema, ApprovalGetParamsSchema, ApprovalListParamsSchema } from '@openclaw/protocol';
import { decideApproval, getApproval, listApprovals } from '../approval-access';
import { type Endpoints, noEndpoint } from './endpoint';
import { parseBody, readJsonBody, send } from './http-io';

/**
 * Approvals: `GET /v1/approvals?status=&limit=`, `GET /v1/approvals/<id>`,
 * `POST /v1/approvals/<id>/approve | reject` (body `{"reason"?}`). Permissions as the WebSocket actions.
 */
export const approvalEndpoints: Endpoints = async (replica, request) => {
  const { req, res, principal, path, method, query } = request;
  if (path === '/v1/approvals' && method === 'GET') {
    const params = parseBody(
      ApprovalListParamsSchema,
      {
        status: query.get('status') ?? undefined,
        limit: query.has('limit') ? Number(query.get('limit')) : undefined,
      },
      'query',
    );
    return send(res, 200, await listApprovals(replica, principal, params.status ?? 'pending', params.limit ?? 100));
  }
  const [, , , rawId, verb, ...rest] = path.split('/');
  const { approvalId } = parseBody(ApprovalGetParamsSchema, { approvalId: rawId }, 'approval id');
  if (rest.length === 0 && verb === undefined && method === 'GET') {
    return send(res, 200, await getApproval(replica, principal, approvalId));
  }
  if (rest.length > 0 || (verb !== 'approve' && verb !== 'reject') || method !== 'POST') throw noEndpoint(request);
  const body = parseBody(
    ApprovalDecideParamsSchema.pick({ reason: true }),
    await readJsonBody(req, replica.config.maxJsonDepth),
    'decision',
  );
  return send(res, 200, await decideApproval(replica, principal, approvalId, verb, body.reason));
};
