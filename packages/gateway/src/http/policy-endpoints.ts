import { GatewayError, OPERATORS_TENANT, PolicyError } from '@openclaw/core';
import { type Endpoints, noEndpoint, requireClusterAdmin } from './endpoint';
import { readText, send } from './http-io';

/**
 * `PUT /v1/policy` (YAML body: check and apply for the whole cluster), `GET /v1/policy` (the policy
 * in force), `GET /v1/policy/explain?principal=&permission=` (which binding and role allow it).
 * The policy is the whole cluster's (every tenant's bindings and rules): cluster administration.
 */
export const policyEndpoints: Endpoints = async (replica, request) => {
  const { req, res, principal, path, method, query } = request;
  requireClusterAdmin(replica, principal, 'the policy');
  const authorizer = replica.authorizer;
  if (path === '/v1/policy' && method === 'GET') {
    const stored = await authorizer.stored();
    return send(res, 200, stored ?? { text: '', version: 0 });
  }
  if (path === '/v1/policy' && method === 'PUT') {
    // A YAML type: a cross-site form or text/plain request (no CORS preflight) is refused.
    if (!/^(application|text)\/(x-)?yaml\b/i.test(req.headers['content-type'] ?? '')) {
      throw new GatewayError('BAD_REQUEST', 'content-type must be application/yaml');
    }
    const text = await readText(req);
    let version: number;
    try {
      version = await authorizer.apply(text, principal.id);
    } catch (error) {
      if (error instanceof PolicyError) {
        replica.audit.record(principal.tenant, {
          type: 'policy.rejected',
          principal: principal.id,
          outcome: 'BAD_REQUEST',
          details: { problems: error.problems.length, first: error.problems[0]?.message ?? null },
        });
        throw new GatewayError('BAD_REQUEST', error.message, { details: error.problems });
      }
      throw error;
    }
    replica.audit.record(principal.tenant, {
      type: 'policy.applied',
      principal: principal.id,
      outcome: 'ok',
      details: { version, bytes: Buffer.byteLength(text) },
    });
    return send(res, 200, { version });
  }
  if (path !== '/v1/policy/explain' || method !== 'GET') throw noEndpoint(request);
  const subject = query.get('principal');
  const permission = query.get('permission');
  if (!subject || !permission) throw new GatewayError('BAD_REQUEST', 'principal and permission are required');
  // A stored key's own role is known; a token's roles, groups and claims are not (they come with each token).
  let roles: string[] = [];
  const keyId = /^apikey:([0-9a-f]{12})$/.exec(subject)?.[1];
  if (keyId && replica.apiKeys) {
    const key = (await replica.apiKeys.list()).find((k) => k.id === keyId);
    if (key) roles = [key.role];
  }
  const explanation = authorizer.current.explain(
    { id: subject, tenant: OPERATORS_TENANT, roles, permissions: new Set() },
    permission,
  );
  return send(res, 200, { principal: subject, permission, policyVersion: authorizer.current.version, ...explanation });
};
