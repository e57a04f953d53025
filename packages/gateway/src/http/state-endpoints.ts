import { type AgentRegistry, GatewayError, type MemoryStore, type ResultCache, type StateStore } from '@openclaw/core';
import {
  CacheInvalidateParamsSchema,
  MemoryAppendParamsSchema,
  MemoryReadParamsSchema,
  NamespaceSchema,
  StateKeySchema,
  StateListParamsSchema,
  StateSetParamsSchema,
} from '@openclaw/protocol';
import { type ApiRequest, type Endpoints, noEndpoint } from './endpoint';
import { parseBody, readJson, requireJson, send } from './http-io';

/** What these endpoints need beyond every endpoint's replica. */
export interface StateEndpointsReplica {
  readonly state: StateStore;
  readonly memory: MemoryStore;
  readonly resultCache: ResultCache;
  readonly registry: AgentRegistry;
}

/** A number from the query string, or undefined when absent. @throws {GatewayError} `BAD_REQUEST`. */
function queryInt(request: ApiRequest, name: string): number | undefined {
  const text = request.query.get(name);
  if (text === null) return undefined;
  if (!/^\d{1,15}$/.test(text)) {
    throw new GatewayError('BAD_REQUEST', `${name} must be a whole number`, {
      details: [{ field: name, message: `got ${JSON.stringify(text)}` }],
    });
  }
  return Number(text);
}

/** A path segment, decoded and checked. @throws {GatewayError} `BAD_REQUEST` naming the field. */
function segment(raw: string, field: string, schema: typeof NamespaceSchema | typeof StateKeySchema): string {
  let text: string;
  try {
    text = decodeURIComponent(raw);
  } catch {
    throw new GatewayError('BAD_REQUEST', `${field} is not valid percent-encoding`, {
      details: [{ field, message: raw }],
    });
  }
  return parseBody(schema, text, field);
}

/**
 * Shared state, memory and the result cache over HTTP, as the actions (same permissions, limits and
 * errors): `GET /v1/state/<ns>` (list: `prefix`, `limit`, `cursor`), `GET|PUT|DELETE
 * /v1/state/<ns>/<key>` (`PUT` body `{value, ttlMs?, ifVersion?}`, `DELETE ?ifVersion=`),
 * `GET|POST|DELETE /v1/memory/<thread>` (read: `after`, `last`; append: `{entries}`; clear), and
 * `POST /v1/cache/invalidate` (`{agent, task?}`). Keys and names are percent-encoded in the path.
 * And two views for operators: `GET /v1/state` (the namespaces the principal may read, with their
 * key counts) and `GET /v1/cache` (each agent's cache policy, entries, hits and misses; `cache:read`).
 */
export const stateEndpoints: Endpoints = async (replica, request) => {
  const { req, res, principal, path, method } = request;
  const { tenant } = principal;
  const audit = (type: string, details: Record<string, string | number | boolean | null>) =>
    replica.audit.record(tenant, { type, principal: principal.id, outcome: 'ok', details });
  const body = async () => {
    requireJson(req);
    return readJson(req, replica.config.maxJsonDepth, replica.config.maxFrameBytes);
  };

  if (path === '/v1/state' && method === 'GET') {
    const namespaces = await replica.state.namespaces(tenant, (namespace) =>
      replica.authorizer.can(principal, `state:read:${namespace}`),
    );
    return send(res, 200, { namespaces });
  }

  if (path === '/v1/cache' && method === 'GET') {
    replica.authorizer.require(principal, 'cache:read');
    const agents = (await replica.registry.list(tenant)).map((a) => a.name);
    return send(res, 200, { agents: await replica.resultCache.summary(tenant, agents) });
  }

  if (path === '/v1/cache/invalidate' && method === 'POST') {
    const { agent, task } = parseBody(CacheInvalidateParamsSchema, await body(), 'cache.invalidate');
    replica.authorizer.require(principal, 'cache:invalidate');
    const invalidated = await replica.resultCache.invalidate(tenant, agent, task);
    audit('cache.invalidated', { agent, task: task ?? null, invalidated });
    return send(res, 200, { invalidated });
  }

  const memory = /^\/v1\/memory\/([^/]+)$/.exec(path);
  if (memory) {
    const thread = segment(memory[1]!, 'thread', NamespaceSchema);
    if (method === 'GET') {
      const { after, last } = parseBody(
        MemoryReadParamsSchema,
        { thread, after: queryInt(request, 'after'), last: queryInt(request, 'last') },
        'memory.read',
      );
      replica.authorizer.require(principal, `memory:read:${thread}`);
      return send(res, 200, { thread, entries: await replica.memory.read(tenant, thread, { after, last }) });
    }
    replica.authorizer.require(principal, `memory:write:${thread}`);
    if (method === 'POST') {
      const { entries } = parseBody(
        MemoryAppendParamsSchema,
        { ...((await body()) as object), thread },
        'memory.append',
      );
      const seq = await replica.memory.append(tenant, thread, entries);
      audit('memory.appended', { thread, seq, entries: entries.length });
      return send(res, 200, { thread, seq });
    }
    if (method === 'DELETE') {
      const cleared = await replica.memory.clear(tenant, thread);
      audit('memory.cleared', { thread, cleared });
      return send(res, 200, { cleared });
    }
    throw noEndpoint(request);
  }

  const state = /^\/v1\/state\/([^/]+)(?:\/([^/]+))?$/.exec(path);
  if (!state) throw noEndpoint(request);
  const namespace = segment(state[1]!, 'namespace', NamespaceSchema);
  if (state[2] === undefined) {
    if (method !== 'GET') throw noEndpoint(request);
    const params = parseBody(
      StateListParamsSchema,
      {
        namespace,
        prefix: request.query.get('prefix') ?? undefined,
        limit: queryInt(request, 'limit'),
        cursor: request.query.get('cursor') ?? undefined,
      },
      'state.list',
    );
    replica.authorizer.require(principal, `state:read:${namespace}`);
    return send(res, 200, await replica.state.list(tenant, namespace, params));
  }
  const key = segment(state[2], 'key', StateKeySchema);
  if (method === 'GET') {
    replica.authorizer.require(principal, `state:read:${namespace}`);
    const entry = await replica.state.get(tenant, namespace, key);
    if (!entry) throw new GatewayError('NOT_FOUND', `no key '${key}' in namespace '${namespace}'`);
    return send(res, 200, entry);
  }
  if (method === 'PUT') {
    const { value, ttlMs, ifVersion } = parseBody(
      StateSetParamsSchema,
      { ...((await body()) as object), namespace, key },
      'state.set',
    );
    replica.authorizer.require(principal, `state:write:${namespace}`);
    const written = await replica.state.set(tenant, namespace, key, value, { ttlMs, ifVersion });
    audit('state.changed', { namespace, key, op: 'set', version: written.version, ttlMs: ttlMs ?? null });
    return send(res, 200, written);
  }
  if (method === 'DELETE') {
    replica.authorizer.require(principal, `state:write:${namespace}`);
    const deleted = await replica.state.delete(tenant, namespace, key, queryInt(request, 'ifVersion'));
    if (deleted) audit('state.changed', { namespace, key, op: 'delete' });
    return send(res, 200, { deleted });
  }
  throw noEndpoint(request);
};
