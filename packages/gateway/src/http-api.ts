import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type AgentRegistry,
  type ApiKeyStore,
  type Approvals,
  type AsyncTasks,
  type AuditLog,
  type Authorizer,
  CLUSTER_ADMIN,
  checkAgentUrl,
  contextOf,
  type GatewayConfig,
  GatewayError,
  inSpan,
  isOperator,
  type Logger,
  OPERATORS_TENANT,
  PolicyError,
  type Principal,
  qualifiedAgent,
  serveMetrics,
  summarizeAudit,
  toWireError,
  traceparentOf,
  UNAUTHENTICATED_TENANT,
} from '@openclaw/core';
import {
  AgentNameSchema,
  ApprovalDecideParamsSchema,
  ApprovalGetParamsSchema,
  ApprovalListParamsSchema,
  CoordinatorParamsSchema,
  describeIssues,
  httpStatusOf,
  nestingProblem,
  parseTimeSpec,
  RetryPolicySchema,
  TASK_STATES,
  TaskNameSchema,
  TaskRespondParamsSchema,
  WorkflowStartParamsSchema,
} from '@openclaw/protocol';
import { SpanKind } from '@opentelemetry/api';
import { z } from 'zod';
import type { ConnectionAdmission } from './admission';
import { decideApproval, getApproval, listApprovals } from './approval-access';
import type { ClusterStatus } from './cluster-status';
import type { ClusterView } from './cluster-view';
import { DashboardAssets } from './dashboard-assets';
import type { GatewayPrometheus } from './gateway-prometheus';
import { isOriginAllowed } from './origin';
import type { GatewayStatus, Readiness } from './replica-status';
import type { TaskCaller, TaskOperations } from './task-operations';
import { GATEWAY_VERSION } from './version';

/** Body of `POST /v1/agents`: register an HTTP agent. */
export const HttpAgentBodySchema = z.object({
  name: AgentNameSchema,
  url: z.string().min(1).max(2048),
  tasks: z.array(TaskNameSchema).max(256).optional(),
  timeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  /** Default retries of async tasks sent to this agent. */
  retry: RetryPolicySchema.optional(),
});

/** Body of `POST /v1/tasks`: submit an async task (the `coordinator` params without `mode`). */
const SubmitBodySchema = CoordinatorParamsSchema.omit({ mode: true, delegation: true });

const MAX_BODY_BYTES = 64 * 1024;
/** The span of `GET /v1/audit/report` without `since`: the 24 hours before `until` (default: now). */
const DEFAULT_REPORT_SPAN_MS = 24 * 3_600_000;

/**
 * The replica's HTTP endpoints. `/healthz` and `/readyz` are open (probes); everything else needs
 * the same credentials as a WebSocket when authentication is on.
 */
/** What the HTTP API needs of its replica: its parts and its status, nothing of its sockets. */
export interface HttpApiReplica {
  readonly config: GatewayConfig;
  readonly logger: Logger;
  readonly audit: AuditLog;
  readonly authorizer: Authorizer;
  readonly approvals: Approvals;
  /** Stored API keys, when `OPENCLAW_API_KEY_SECRET` is set. */
  readonly apiKeys: ApiKeyStore | undefined;
  readonly registry: AgentRegistry;
  readonly asyncTasks: AsyncTasks;
  readonly tasks: TaskOperations;
  readonly prometheus: GatewayPrometheus;
  readonly clusterView: ClusterView;
  readonly admission: ConnectionAdmission;
  readiness(): Readiness;
  status(tenant?: string): GatewayStatus;
  metricsSnapshot(): unknown;
  workers(): Promise<Record<string, string>[]>;
  clusterStatus(tenant: string, options?: { audit?: boolean }): Promise<ClusterStatus>;
  /** Closes the connections of revoked or expired credentials now (after a revocation). */
  checkCredentials(): Promise<void>;
}

export class HttpApi {
  private readonly dashboard: DashboardAssets;

  constructor(private readonly gateway: HttpApiReplica) {
    this.dashboard = new DashboardAssets({ jaegerUrl: gateway.config.jaegerUrl, version: GATEWAY_VERSION });
    if (this.dashboard.missing) gateway.logger.warn(this.dashboard.missing);
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const header = req.headers.traceparent;
    // Who asked, once authenticated: every refusal is audited in that principal's tenant.
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
              'openclaw.replica': this.gateway.config.replicaId,
            },
          },
          () => this.route(req, res, asker),
        );
    routed.catch((error: unknown) => {
      const wire = toWireError(error);
      // The path only: a query string may carry an API key.
      const path = (req.url ?? '/').split('?')[0];
      if (wire.code === 'INTERNAL')
        this.gateway.logger.error({ err: error, method: req.method, path }, 'HTTP handler failed');
      if (wire.code === 'FORBIDDEN' && asker.principal) {
        this.gateway.audit.record(asker.principal.tenant, {
          type: 'authz.denied',
          principal: asker.principal.id,
          outcome: 'FORBIDDEN',
          details: {
            via: 'http',
            method: req.method ?? 'GET',
            path: routeName(path ?? '/'),
            ...permissionOf(wire),
            reason: wire.message,
          },
        });
      }
      if (wire.retryAfterMs !== undefined) res.setHeader('retry-after', String(Math.ceil(wire.retryAfterMs / 1000)));
      send(res, httpStatusOf(wire.code), { error: wire });
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse, asker: Asker): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://gateway.invalid').pathname;
    const method = req.method ?? 'GET';
    if (path === '/healthz') return send(res, 200, { status: 'ok' });
    if (path === '/metrics' && method === 'GET') {
      return serveMetrics(req, res, this.gateway.prometheus, this.gateway.config.metricsToken);
    }
    if (path === '/readyz') {
      const readiness = this.gateway.readiness();
      return send(res, readiness.ready ? 200 : 503, readiness);
    }
    if (this.dashboard.serve(req, res, path)) return;
    // Browsers may reach a replica on localhost: a page from another origin must not drive its API.
    if (!isOriginAllowed(req.headers.origin, this.gateway.config, req.headers.host)) {
      this.gateway.admission.auditOriginRefused(req, path);
      throw new GatewayError('FORBIDDEN', 'this Origin is not allowed to use the API');
    }
    const principal = await this.gateway.admission.authenticate(req);
    asker.principal = principal;
    if (path === '/v1/apikeys' || path.startsWith('/v1/apikeys/'))
      return this.apiKeyEndpoints(req, res, principal, path, method);
    if (path === '/v1/policy' || path === '/v1/policy/explain')
      return this.policyEndpoints(req, res, principal, path, method);
    if ((path === '/v1/audit' || path === '/v1/audit/verify' || path === '/v1/audit/report') && method === 'GET') {
      return this.auditEndpoints(req, res, principal, path);
    }
    if (path === '/v1/tasks' || path.startsWith('/v1/tasks/') || path === '/v1/workflows') {
      return this.taskEndpoints(req, res, principal, path, method);
    }
    if (path === '/v1/approvals' || path.startsWith('/v1/approvals/')) {
      return this.approvalEndpoints(req, res, principal, path, method);
    }
    if (path === '/v1/workers' && method === 'GET') {
      this.needClusterWide(principal, 'the workers');
      return send(res, 200, await this.gateway.workers());
    }
    if (path === '/v1/cluster' && method === 'GET') {
      need(this.gateway, principal, 'cluster:read');
      const audit = this.gateway.authorizer.can(principal, 'audit:read');
      return send(res, 200, await this.gateway.clusterStatus(principal.tenant, { audit }));
    }
    if (path === '/v1/cluster/metrics' && method === 'GET') {
      this.needClusterWide(principal, "the cluster's metrics");
      const [replicas, queue] = await Promise.all([
        this.gateway.clusterView.replicas(),
        this.gateway.asyncTasks.queue.counts().catch(() => undefined),
      ]);
      return send(res, 200, { at: Date.now(), replicas, queue: queue ?? null });
    }
    if (path === '/status' && method === 'GET') {
      // Every tenant sees this replica's health and its own agents here; only operators see all of them.
      const everyTenant = isOperator(principal) && this.gateway.authorizer.can(principal, 'cluster:read');
      return send(res, 200, this.gateway.status(everyTenant ? undefined : principal.tenant));
    }
    if (path === '/v1/metrics' && method === 'GET') {
      this.needClusterWide(principal, "this replica's metrics");
      return send(res, 200, this.gateway.metricsSnapshot());
    }
    if (path === '/v1/agents' && method === 'GET') {
      need(this.gateway, principal, 'agent:list');
      return send(res, 200, await this.gateway.registry.list(principal.tenant));
    }
    if (path === '/v1/agents' && method === 'POST') return this.registerHttpAgent(req, res, principal);
    const match = /^\/v1\/agents\/([^/]+)$/.exec(path);
    if (match && method === 'DELETE') {
      const name = decodeURIComponent(match[1]!);
      need(this.gateway, principal, `agent:register:${name}`);
      const existed = await this.gateway.registry.removeHttpAgent(qualifiedAgent(principal.tenant, name));
      if (!existed) throw new GatewayError('NOT_FOUND', `no HTTP agent named '${name}'`);
      this.gateway.audit.record(principal.tenant, {
        type: 'http-agent.removed',
        principal: principal.id,
        outcome: 'ok',
        details: { agent: name },
      });
      return send(res, 200, { name, removed: true });
    }
    throw new GatewayError('NOT_FOUND', `no endpoint ${method} ${path}`);
  }

  /**
   * `POST /v1/apikeys` (create; the key is in the answer, once), `GET /v1/apikeys` (list),
   * `DELETE /v1/apikeys/<id>` (revoke). A tenant's admins (`admin`) manage their own tenant's keys;
   * other tenants' keys are cluster administration ({@link CLUSTER_ADMIN}).
   */
  private async apiKeyEndpoints(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
    path: string,
    method: string,
  ): Promise<void> {
    need(this.gateway, principal, 'admin');
    const everyTenant = this.gateway.authorizer.can(principal, CLUSTER_ADMIN);
    const store = this.gateway.apiKeys;
    if (!store) {
      throw new GatewayError('UNAVAILABLE', 'stored API keys need OPENCLAW_API_KEY_SECRET on the gateway', {
        retryable: false,
      });
    }
    if (path === '/v1/apikeys' && method === 'GET') {
      const asked = new URL(req.url ?? '/', 'http://gateway.invalid').searchParams.get('tenant');
      if (asked !== null && asked !== principal.tenant) this.needClusterAdmin(principal, "another tenant's API keys");
      return send(res, 200, await store.list(asked ?? (everyTenant ? undefined : principal.tenant)));
    }
    if (path === '/v1/apikeys' && method === 'POST') {
      requireJson(req);
      const parsed = NewApiKeyBodySchema.safeParse(await readJson(req, this.gateway.config.maxJsonDepth));
      if (!parsed.success) {
        const details = describeIssues(parsed.error);
        throw new GatewayError(
          'BAD_REQUEST',
          `invalid API key: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`,
          { details },
        );
      }
      const tenant = parsed.data.tenant ?? principal.tenant;
      if (tenant !== principal.tenant) this.needClusterAdmin(principal, `a key for tenant '${tenant}'`);
      const { key, info } = await store.create({
        name: parsed.data.name,
        role: parsed.data.role,
        tenant,
        createdBy: principal.id,
        expiresAt: parsed.data.expiresAt,
      });
      this.gateway.logger.info(
        { apiKey: info.id, role: info.role, tenant: info.tenant, principal: principal.id },
        'created an API key',
      );
      this.gateway.audit.record(principal.tenant, {
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
    if (match && method === 'DELETE') {
      const id = decodeURIComponent(match[1]!);
      // Another tenant's key is answered as if it did not exist (ids are not to be probed), and audited.
      const existing = await store.get(id);
      if (existing && existing.tenant !== principal.tenant && !everyTenant) {
        this.gateway.audit.record(principal.tenant, {
          type: 'authz.denied',
          principal: principal.id,
          outcome: 'FORBIDDEN',
          details: { via: 'http', method, path: '/v1/apikeys/:id', reason: "another tenant's API key" },
        });
      }
      if (!existing || (existing.tenant !== principal.tenant && !everyTenant)) {
        throw new GatewayError('NOT_FOUND', `no API key with id '${id}'`);
      }
      const info = await store.revoke(id);
      this.gateway.logger.info({ apiKey: info.id, principal: principal.id }, 'revoked an API key');
      this.gateway.audit.record(principal.tenant, {
        type: 'apikey.revoked',
        principal: principal.id,
        outcome: 'ok',
        details: { apiKey: info.id, tenant: info.tenant },
      });
      await this.gateway.checkCredentials();
      return send(res, 200, info);
    }
    throw new GatewayError('NOT_FOUND', `no endpoint ${method} ${path}`);
  }

  /**
   * `GET /v1/audit?tenant=&limit=` (the last entries), `GET /v1/audit?tenant=&since=&until=` (entries
   * between two times: durations ago such as `1h`, ISO times or epoch ms; see {@link parseTimeSpec}),
   * `GET /v1/audit/report?tenant=&since=&until=` (a summary of the span; without `since`, the 24
   * hours before `until`), `GET /v1/audit/verify?tenant=` (the chain). A tenant's admins read their
   * own tenant; cluster administrators ({@link CLUSTER_ADMIN}) may name any tenant, verify all of
   * them, and see failed logins in reports.
   */
  private async auditEndpoints(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
    path: string,
  ): Promise<void> {
    need(this.gateway, principal, 'admin');
    const query = new URL(req.url ?? '/', 'http://gateway.invalid').searchParams;
    const asked = query.get('tenant');
    if (asked !== null && asked !== principal.tenant) this.needClusterAdmin(principal, "another tenant's audit trail");
    const everyTenant = this.gateway.authorizer.can(principal, CLUSTER_ADMIN);
    const audit = this.gateway.audit;
    await audit.drain();
    if (path === '/v1/audit/verify') {
      const tenants = asked !== null ? [asked] : everyTenant ? await audit.tenants() : [principal.tenant];
      const results = await Promise.all(tenants.map((t) => audit.verify(t)));
      return send(res, 200, { ok: results.every((r) => r.ok), tenants: results });
    }
    const tenant = asked ?? principal.tenant;
    const since = query.get('since');
    const until = query.get('until');
    // One clock for both ends: `since=1h` and `until=5m` count back from the same moment.
    const now = Date.now();
    if (path === '/v1/audit/report') {
      const to = until === null ? now : epochTime(until, 'until', now);
      const from = since === null ? Math.max(0, to - DEFAULT_REPORT_SPAN_MS) : epochTime(since, 'since', now);
      const entries = await audit.read(tenant, String(from), String(to), 1_000_000);
      // Failed logins have no tenant: cluster administrators see them in their reports.
      const failed = everyTenant ? await audit.read(UNAUTHENTICATED_TENANT, String(from), String(to), 1_000_000) : [];
      return send(res, 200, summarizeAudit(tenant, { since: from, until: to }, entries, failed));
    }
    if (since !== null || until !== null) {
      const from = since === null ? '-' : String(epochTime(since, 'since', now));
      const to = until === null ? '+' : String(epochTime(until, 'until', now));
      return send(res, 200, await audit.read(tenant, from, to));
    }
    const limit = Number(query.get('limit') ?? '50');
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw new GatewayError('BAD_REQUEST', 'limit: expected an integer from 1 to 10000');
    }
    return send(res, 200, await audit.tail(tenant, limit));
  }

  /**
   * `PUT /v1/policy` (YAML body: check and apply for the whole cluster), `GET /v1/policy` (the policy
   * in force), `GET /v1/policy/explain?principal=&permission=` (which binding and role allow it).
   * The policy is the whole cluster's (every tenant's bindings and rules): cluster administration.
   */
  private async policyEndpoints(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
    path: string,
    method: string,
  ): Promise<void> {
    this.needClusterAdmin(principal, 'the policy');
    const authorizer = this.gateway.authorizer;
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
          this.gateway.audit.record(principal.tenant, {
            type: 'policy.rejected',
            principal: principal.id,
            outcome: 'BAD_REQUEST',
            details: { problems: error.problems.length, first: error.problems[0]?.message ?? null },
          });
          throw new GatewayError('BAD_REQUEST', error.message, { details: error.problems });
        }
        throw error;
      }
      this.gateway.audit.record(principal.tenant, {
        type: 'policy.applied',
        principal: principal.id,
        outcome: 'ok',
        details: { version, bytes: Buffer.byteLength(text) },
      });
      return send(res, 200, { version });
    }
    if (path === '/v1/policy/explain' && method === 'GET') {
      const query = new URL(req.url ?? '/', 'http://gateway.invalid').searchParams;
      const subject = query.get('principal');
      const permission = query.get('permission');
      if (!subject || !permission) throw new GatewayError('BAD_REQUEST', 'principal and permission are required');
      // A stored key's own role is known; a token's roles, groups and claims are not (they come with each token).
      let roles: string[] = [];
      const keyId = /^apikey:([0-9a-f]{12})$/.exec(subject)?.[1];
      if (keyId && this.gateway.apiKeys) {
        const key = (await this.gateway.apiKeys.list()).find((k) => k.id === keyId);
        if (key) roles = [key.role];
      }
      const explanation = authorizer.current.explain(
        { id: subject, tenant: OPERATORS_TENANT, roles, permissions: new Set() },
        permission,
      );
      return send(res, 200, {
        principal: subject,
        permission,
        policyVersion: authorizer.current.version,
        ...explanation,
      });
    }
    throw new GatewayError('NOT_FOUND', `no endpoint ${method} ${path}`);
  }

  /**
   * Async tasks and workflows: `GET /v1/tasks?status=&limit=`, `GET /v1/tasks/<id>`,
   * `POST /v1/tasks` (submit), `POST /v1/tasks/<id>/cancel | retry | respond`, `POST /v1/workflows`.
   * Permissions as the WebSocket actions; operators (`task:read:any`) see the whole tenant.
   */
  private async taskEndpoints(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
    path: string,
    method: string,
  ): Promise<void> {
    const tasks = this.gateway.tasks;
    const caller: TaskCaller = { principal };
    const traceparent = traceparentOf();
    if (traceparent !== undefined) caller.traceparent = traceparent;
    if (path === '/v1/tasks' && method === 'GET') {
      const query = new URL(req.url ?? '/', 'http://gateway.invalid').searchParams;
      const status = query.get('status') ?? 'failed';
      if (!(TASK_STATES as readonly string[]).includes(status)) {
        tasks.require(principal, 'task:read');
        throw new GatewayError('BAD_REQUEST', `status must be one of ${TASK_STATES.join(', ')}`, {
          details: [{ field: 'status', message: `got ${JSON.stringify(status)}` }],
        });
      }
      const limit = Number(query.get('limit') ?? '100');
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        tasks.require(principal, 'task:read');
        throw new GatewayError('BAD_REQUEST', 'limit must be an integer from 1 to 1000', {
          details: [{ field: 'limit', message: `got ${JSON.stringify(query.get('limit'))}` }],
        });
      }
      return send(res, 200, await tasks.list(caller, status as (typeof TASK_STATES)[number], limit));
    }
    if (path === '/v1/tasks' && method === 'POST') {
      const body = parseBody(SubmitBodySchema, await readJsonBody(req, this.gateway.config.maxJsonDepth), 'task');
      const submitted = await tasks.submit(caller, { ...body, data: body.data ?? null });
      return send(res, 202, { taskId: submitted.taskId, status: submitted.status });
    }
    if (path === '/v1/workflows' && method === 'POST') {
      const body = parseBody(
        WorkflowStartParamsSchema,
        await readJsonBody(req, this.gateway.config.maxJsonDepth),
        'workflow',
      );
      const submitted = await tasks.startWorkflow(caller, body.workflow, body.input ?? null, body.idempotencyKey);
      return send(res, 202, { taskId: submitted.taskId, status: submitted.status });
    }
    const match = /^\/v1\/tasks\/([^/]+)(?:\/(cancel|retry|respond|events))?$/.exec(path);
    if (!match) throw new GatewayError('NOT_FOUND', `no endpoint ${method} ${path}`);
    const taskId = decodeURIComponent(match[1]!);
    const verb = match[2];
    if (verb === undefined && method === 'GET') return send(res, 200, await tasks.get(caller, taskId));
    if (verb === 'events' && method === 'GET') {
      const after = new URL(req.url ?? '/', 'http://gateway.invalid').searchParams.get('after') ?? undefined;
      return send(res, 200, await tasks.events(caller, taskId, after));
    }
    if (method !== 'POST' || verb === undefined) throw new GatewayError('NOT_FOUND', `no endpoint ${method} ${path}`);
    if (verb === 'cancel') return send(res, 200, await tasks.cancel(caller, taskId));
    if (verb === 'retry') return send(res, 200, await tasks.retry(caller, taskId));
    tasks.require(principal, 'task:respond');
    const body = parseBody(
      TaskRespondParamsSchema.omit({ taskId: true }),
      await readJsonBody(req, this.gateway.config.maxJsonDepth),
      'answer',
    );
    return send(res, 200, await tasks.respond(caller, taskId, body.output));
  }

  /**
   * Approvals: `GET /v1/approvals?status=&limit=`, `GET /v1/approvals/<id>`,
   * `POST /v1/approvals/<id>/approve | reject` (body `{"reason"?}`). Permissions as the WebSocket actions.
   */
  private async approvalEndpoints(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
    path: string,
    method: string,
  ): Promise<void> {
    if (path === '/v1/approvals' && method === 'GET') {
      const query = new URL(req.url ?? '/', 'http://gateway.invalid').searchParams;
      const params = parseBody(
        ApprovalListParamsSchema,
        {
          status: query.get('status') ?? undefined,
          limit: query.has('limit') ? Number(query.get('limit')) : undefined,
        },
        'query',
      );
      const list = await listApprovals(this.gateway, principal, params.status ?? 'pending', params.limit ?? 100);
      return send(res, 200, list);
    }
    const [, , , rawId, verb, ...rest] = path.split('/');
    const { approvalId } = parseBody(ApprovalGetParamsSchema, { approvalId: rawId }, 'approval id');
    if (rest.length === 0 && verb === undefined && method === 'GET') {
      return send(res, 200, await getApproval(this.gateway, principal, approvalId));
    }
    if (rest.length === 0 && (verb === 'approve' || verb === 'reject') && method === 'POST') {
      const body = parseBody(
        ApprovalDecideParamsSchema.pick({ reason: true }),
        await readJsonBody(req, this.gateway.config.maxJsonDepth),
        'decision',
      );
      return send(res, 200, await decideApproval(this.gateway, principal, approvalId, verb, body.reason));
    }
    throw new GatewayError('NOT_FOUND', `no endpoint ${method} ${path}`);
  }

  /**
   * Refuses a principal that does not administer the whole cluster.
   * @param what what is asked for, for the message.
   */
  private needClusterAdmin(principal: Principal, what: string): void {
    if (this.gateway.authorizer.can(principal, CLUSTER_ADMIN)) return;
    throw new GatewayError(
      'FORBIDDEN',
      `missing permission '${CLUSTER_ADMIN}': ${what} is cluster administration, held only by administrators of the operators' tenant '${OPERATORS_TENANT}'`,
      { details: { permission: CLUSTER_ADMIN } },
    );
  }

  /** Refuses a principal that may not see views spanning every tenant (`cluster:read` in the operators' tenant). */
  private needClusterWide(principal: Principal, what: string): void {
    need(this.gateway, principal, 'cluster:read');
    if (isOperator(principal)) return;
    throw new GatewayError(
      'FORBIDDEN',
      `${what} span every tenant: only principals of the operators' tenant '${OPERATORS_TENANT}' with 'cluster:read' see them`,
    );
  }

  private async registerHttpAgent(req: IncomingMessage, res: ServerResponse, principal: Principal): Promise<void> {
    requireJson(req);
    const body = await readJson(req, this.gateway.config.maxJsonDepth);
    const parsed = HttpAgentBodySchema.safeParse(body);
    if (!parsed.success) {
      const details = describeIssues(parsed.error);
      throw new GatewayError(
        'BAD_REQUEST',
        `invalid agent: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`,
        { details },
      );
    }
    need(this.gateway, principal, `agent:register:${parsed.data.name}`);
    const url = await checkAgentUrl(parsed.data.url, {
      allowPrivate: this.gateway.config.httpAgentsAllowPrivateResolved,
    });
    const agent = {
      name: parsed.data.name,
      url: url.toString(),
      tasks: parsed.data.tasks ?? [],
      timeoutMs: parsed.data.timeoutMs,
    };
    await this.gateway.registry.registerHttpAgent({ ...agent, name: qualifiedAgent(principal.tenant, agent.name) });
    if (parsed.data.retry !== undefined) {
      await this.gateway.asyncTasks.setAgentRetry(principal.tenant, agent.name, parsed.data.retry);
    }
    this.gateway.logger.info(
      { agent: agent.name, url: agent.url, principal: principal.id },
      'registered an HTTP agent',
    );
    this.gateway.audit.record(principal.tenant, {
      type: 'http-agent.registered',
      principal: principal.id,
      outcome: 'ok',
      details: { agent: agent.name, url: agent.url },
    });
    send(res, 201, { name: agent.name, kind: 'http', url: agent.url, tasks: agent.tasks });
  }
}

/** A query's time (see {@link parseTimeSpec}) as epoch ms; before 1970 is 0, the first stream id. */
function epochTime(text: string, field: string, now: number): number {
  return Math.max(0, parseTimeSpec(text, field, { now }));
}

/** Body of `POST /v1/apikeys`. */
export const NewApiKeyBodySchema = z.object({
  name: z.string().min(1).max(64),
  role: z.string().min(1).max(64),
  tenant: z.string().min(1).max(63).optional(),
  /** Epoch milliseconds. */
  expiresAt: z.number().int().positive().optional(),
});

/** Only JSON bodies: a cross-site form or text/plain POST (which needs no CORS preflight) is refused. */
function requireJson(req: IncomingMessage): void {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    throw new GatewayError('BAD_REQUEST', 'content-type must be application/json');
  }
}

/** Who an HTTP request acts as, once authenticated. */
interface Asker {
  principal?: Principal;
}

/** Refuses a principal without a permission (the refusal is audited where the request ends). */
function need(gateway: HttpApiReplica, principal: Principal, permission: string): void {
  if (gateway.authorizer.can(principal, permission)) return;
  throw new GatewayError('FORBIDDEN', `missing permission '${permission}'`, { details: { permission } });
}

/** The permission a refusal names, for its audit entry. */
function permissionOf(wire: { details?: unknown }): { permission?: string } {
  const permission = (wire.details as { permission?: unknown } | undefined)?.permission;
  return typeof permission === 'string' ? { permission } : {};
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw new GatewayError('PAYLOAD_TOO_LARGE', `request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(req: IncomingMessage, maxDepth: number): Promise<unknown> {
  const text = await readText(req);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new GatewayError('BAD_REQUEST', 'request body is not valid JSON');
  }
  const tooDeep = nestingProblem(body, maxDepth);
  if (tooDeep) {
    throw new GatewayError(
      'BAD_REQUEST',
      `request body: ${tooDeep.field || 'the body'} is nested deeper than ${maxDepth} levels`,
      { details: [tooDeep] },
    );
  }
  return body;
}

/** Reads a JSON body (content-type checked). */
async function readJsonBody(req: IncomingMessage, maxDepth: number): Promise<unknown> {
  requireJson(req);
  return readJson(req, maxDepth);
}

/** Validates a body, with `BAD_REQUEST` naming each failing field. */
function parseBody<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const details = describeIssues(parsed.error);
  throw new GatewayError(
    'BAD_REQUEST',
    `invalid ${what}: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`,
    {
      details,
    },
  );
}

/** Writes a JSON response (never sniffed as something else: it may echo client-chosen text). */
export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}

/** A path as a span name: ids replaced, so names stay few (`/v1/tasks/:id/cancel`). */
function routeName(path: string): string {
  return path
    .split('/')
    .map((part, i) =>
      i >= 3 &&
      part.length > 0 &&
      !/^(cancel|retry|respond|events|approve|reject|metrics|explain|verify|report)$/.test(part)
        ? ':id'
        : part,
    )
    .join('/');
}
