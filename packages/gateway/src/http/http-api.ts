import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  contextOf,
  deniedPermission,
  GatewayError,
  inSpan,
  type Principal,
  serveMetrics,
  toWireError,
} from '@openclaw/core';
import { httpStatusOf } from '@openclaw/protocol';
import { SpanKind } from '@opentelemetry/api';
import { DashboardAssets } from '../dashboard-assets';
import { isOriginAllowed } from '../origin';
import { GATEWAY_VERSION } from '../version';
import { a2aEndpoint } from './a2a-endpoint';
import { agentEndpoints } from './agent-endpoints';
import { apiKeyEndpoints } from './api-key-endpoints';
import { approvalEndpoints } from './approval-endpoints';
import { auditEndpoints } from './audit-endpoints';
import { clusterEndpoints } from './cluster-endpoints';
import { type Endpoints, type HttpApiReplica, noEndpoint } from './endpoint';
import { routeName, send } from './http-io';
import { mcpEndpoint } from './mcp-endpoint';
import { policyEndpoints } from './policy-endpoints';
import { regionEndpoints } from './region-endpoints';
import { stateEndpoints } from './state-endpoints';
import { taskEndpoints } from './task-endpoints';

/** Which group of endpoints serves a path (every one of them needs an authenticated principal). */
const ROUTES: readonly { serves: (path: string) => boolean; endpoints: Endpoints }[] = [
  { serves: (path) => path === '/v1/apikeys' || path.startsWith('/v1/apikeys/'), endpoints: apiKeyEndpoints },
  { serves: (path) => path === '/v1/policy' || path === '/v1/policy/explain', endpoints: policyEndpoints },
  {
    serves: (path) => path === '/v1/audit' || path === '/v1/audit/verify' || path === '/v1/audit/report',
    endpoints: auditEndpoints,
  },
  {
    serves: (path) => path === '/v1/tasks' || path.startsWith('/v1/tasks/') || path === '/v1/workflows',
    endpoints: taskEndpoints,
  },
  { serves: (path) => path === '/v1/approvals' || path.startsWith('/v1/approvals/'), endpoints: approvalEndpoints },
  { serves: (path) => path === '/v1/agents' || path.startsWith('/v1/agents/'), endpoints: agentEndpoints },
  {
    serves: (path) =>
      path === '/v1/state' ||
      path.startsWith('/v1/state/') ||
      path.startsWith('/v1/memory/') ||
      path === '/v1/cache' ||
      path === '/v1/cache/invalidate',
    endpoints: stateEndpoints,
  },
  { serves: (path) => path === '/mcp', endpoints: mcpEndpoint },
  { serves: (path) => path.startsWith('/a2a/'), endpoints: a2aEndpoint },
  {
    serves: (path) => ['/status', '/v1/cluster', '/v1/cluster/metrics', '/v1/workers', '/v1/metrics'].includes(path),
    endpoints: clusterEndpoints,
  },
];

/** Who an HTTP request acts as, once authenticated. */
interface Asker {
  principal?: Principal;
}

/**
 * The replica's HTTP endpoints. `/healthz`, `/readyz` and `/metrics` (its own token) are open to
 * probes and scrapers, and the dashboard's files to browsers; everything else needs the same
 * credentials as a WebSocket when authentication is on. Each group of endpoints lives in its own
 * file; this class authenticates, traces, and turns errors into answers (audited when refused).
 */
export class HttpApi {
  private readonly dashboard: DashboardAssets;

  constructor(private readonly replica: HttpApiReplica) {
    this.dashboard = new DashboardAssets({ jaegerUrl: replica.config.jaegerUrl, version: GATEWAY_VERSION });
    if (this.dashboard.missing) replica.logger.warn(this.dashboard.missing);
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const header = req.headers.traceparent;
    const asker: Asker = {};
    // Probes and scrapes make no traces; every other request is a server span, continuing the
    // caller's `traceparent` header (the CLI sends one when it traces).
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const quiet = path === '/healthz' || path === '/readyz' || path === '/metrics' || path.startsWith('/dashboard');
    const routed = quiet
      ? this.route(req, res, asker)
      : inSpan(
          `openclaw ${req.method ?? 'GET'} ${routeName(path)}`,
          {
            kind: SpanKind.SERVER,
            parent: contextOf(typeof header === 'string' ? header : undefined),
            attributes: {
              'http.request.method': req.method ?? 'GET',
              'openclaw.replica': this.replica.config.replicaId,
            },
          },
          () => this.route(req, res, asker),
        );
    routed.catch((error: unknown) => this.fail(req, res, asker, path, error));
  }

  private async route(req: IncomingMessage, res: ServerResponse, asker: Asker): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/healthz') return send(res, 200, { status: 'ok' });
    if (path === '/metrics' && method === 'GET') {
      return serveMetrics(req, res, this.replica.prometheus, this.replica.config.metricsToken);
    }
    if (path === '/readyz') {
      const readiness = this.replica.readiness();
      return send(res, readiness.ready ? 200 : 503, readiness);
    }
    if (this.dashboard.serve(req, res, path)) return;
    // Linked regions authenticate with the regions' shared secret, not as a principal.
    if (path.startsWith('/v1/regions/')) return regionEndpoints(this.replica, req, res, path);
    // Browsers may reach a replica on localhost: a page from another origin must not drive its API.
    if (!isOriginAllowed(req.headers.origin, this.replica.config, req.headers.host)) {
      this.replica.admission.auditOriginRefused(req, path);
      throw new GatewayError('FORBIDDEN', 'this Origin is not allowed to use the API');
    }
    const principal = await this.replica.admission.authenticate(req);
    asker.principal = principal;
    const request = { req, res, principal, path, method, query: url.searchParams };
    const route = ROUTES.find((r) => r.serves(path));
    if (!route) throw noEndpoint(request);
    return route.endpoints(this.replica, request);
  }

  /** Answers a failed request with its error; a refusal is audited in the asker's tenant. */
  private fail(req: IncomingMessage, res: ServerResponse, asker: Asker, path: string, error: unknown): void {
    const wire = toWireError(error);
    // The path only: a query string may carry an API key.
    if (wire.code === 'INTERNAL') {
      this.replica.logger.error({ err: error, method: req.method, path }, 'HTTP handler failed');
    }
    if (wire.code === 'FORBIDDEN' && asker.principal) {
      this.replica.audit.record(asker.principal.tenant, {
        type: 'authz.denied',
        principal: asker.principal.id,
        outcome: 'FORBIDDEN',
        details: {
          via: 'http',
          method: req.method ?? 'GET',
          path: routeName(path),
          ...deniedPermission(wire),
          reason: wire.message,
        },
      });
    }
    if (wire.retryAfterMs !== undefined) res.setHeader('retry-after', String(Math.ceil(wire.retryAfterMs / 1000)));
    send(res, httpStatusOf(wire.code), { error: wire });
  }
}
