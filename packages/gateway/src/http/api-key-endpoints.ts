import { CLUSTER_ADMIN, GatewayError } from '@openclaw/core';
import { z } from 'zod';
import { type Endpoints, noEndpoint, requireClusterAdmin } from './endpoint';
import { parseBody, readJson, requireJson, send } from './http-io';

/** Body of `POST /v1/apikeys`. */
export const NewApiKeyBodySchema = z.object({
  name: z.string().min(1).max(64),
  role: z.string().min(1).max(64),
  tenant: z.string().min(1).max(63).optional(),
  /** Epoch milliseconds. */
  expiresAt: z.number().int().positive().optional(),
});

/**
 * `POST /v1/apikeys` (create; the key is in the answer, once), `GET /v1/apikeys` (list),
 * `DELETE /v1/apikeys/<id>` (revoke). A tenant's admins (`admin`) manage their own tenant's keys;
 * other tenants' keys are cluster administration ({@link CLUSTER_ADMIN}).
 */
export const apiKeyEndpoints: Endpoints = async (replica, request) => {
  const { req, res, principal, path, method, query } = request;
  replica.authorizer.require(principal, 'admin');
  const everyTenant = replica.authorizer.can(principal, CLUSTER_ADMIN);
  const store = replica.apiKeys;
  if (!store) {
    throw new GatewayError('UNAVAILABLE', 'stored API keys need OPENCLAW_API_KEY_SECRET on the gateway', {
      retryable: false,
    });
  }
  if (path === '/v1/apikeys' && method === 'GET') {
    const asked = query.get('tenant');
    if (asked !== null && asked !== principal.tenant) {
      requireClusterAdmin(replica, principal, "another tenant's API keys");
    }
    return send(res, 200, await store.list(asked ?? (everyTenant ? undefined : principal.tenant)));
  }
  if (path === '/v1/apikeys' && method === 'POST') {
    requireJson(req);
    const body = parseBody(NewApiKeyBodySchema, await readJson(req, replica.config.maxJsonDepth), 'API key');
    const tenant = body.tenant ?? principal.tenant;
    if (tenant !== principal.tenant) requireClusterAdmin(replica, principal, `a key for tenant '${tenant}'`);
    const { key, info } = await store.create({
      name: body.name,
      role: body.role,
      tenant,
      createdBy: principal.id,
      expiresAt: body.expiresAt,
    });
    replica.logger.info(
      { apiKey: info.id, role: info.role, tenant: info.tenant, principal: principal.id },
      'created an API key',
    );
    replica.audit.record(principal.tenant, {
      type: 'apikey.created',
      principal: principal.id,
      outcome: 'ok',
      details: {
        apiKey: info.id,
        name: info.name,
        role: info.role,
        tenant: info.tenant,
        expiresAt: info.expiresAt ?? null,
      },
    });
    return send(res, 201, { ...info, key });
  }
  const match = /^\/v1\/apikeys\/([^/]+)$/.exec(path);
  if (!match || method !== 'DELETE') throw noEndpoint(request);
  const id = decodeURIComponent(match[1]!);
  // Another tenant's key is answered as if it did not exist (ids are not to be probed), and audited.
  const existing = await store.get(id);
  const foreign = existing !== undefined && existing.tenant !== principal.tenant && !everyTenant;
  if (foreign) {
    replica.audit.record(principal.tenant, {
      type: 'authz.denied',
      principal: principal.id,
      outcome: 'FORBIDDEN',
      details: { via: 'http', method, path: '/v1/apikeys/:id', reason: "another tenant's API key" },
    });
  }
  if (!existing || foreign) throw new GatewayError('NOT_FOUND', `no API key with id '${id}'`);
  const info = await store.revoke(id);
  replica.logger.info({ apiKey: info.id, principal: principal.id }, 'revoked an API key');
  replica.audit.record(principal.tenant, {
    type: 'apikey.revoked',
    principal: principal.id,
    outcome: 'ok',
    details: { apiKey: info.id, tenant: info.tenant },
  });
  await replica.checkCredentials();
  return send(res, 200, info);
};
