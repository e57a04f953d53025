import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type AgentRegistry,
  ApiKeyAuthenticator,
  ApiKeyStore,
  type Approvals,
  type AsyncTasks,
  type AuditEntry,
  type AuditLog,
  type Authenticator,
  AuthLockout,
  type Authorizer,
  asyncTaskDefaults,
  type CallLimits,
  ClusterNode,
  CONNECTION_ENTRY_TTL_MS,
  ConnectionLimiter,
  clientAddress,
  contextOf,
  createLogger,
  DelegationIssuer,
  type GatewayConfig,
  GatewayError,
  type GovernanceGate,
  type HttpAgentClient,
  inSpan,
  JwtAuthenticator,
  type Logger,
  loadCustomValidators,
  NoAuthenticator,
  OPERATORS_TENANT,
  type Principal,
  type RedisClusterBus,
  type RedisKeys,
  type TaskDispatcher,
  type Validator,
  type ValidatorStats,
} from '@openclaw/core';
import { CloseCode, DRAIN_CLOSE_REASON, httpStatusOf, type ValidatorSummary } from '@openclaw/protocol';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type Redis from 'ioredis';
import { type WebSocket, WebSocketServer } from 'ws';
import type { HandlerContext } from './action-handlers';
import { AgentHost, type LocalAgentStatus } from './agent-host';
import {
  ClusterView,
  type RedisHealth,
  type ReplicaHealth,
  type ReplicaReport,
  summarizeValidators,
} from './cluster-view';
import { ClusterWatch } from './cluster-watch';
import { handleFrame } from './frame-handler';
import { GatewayMetrics, type MetricsSnapshot } from './gateway-metrics';
import { GatewayPrometheus } from './gateway-prometheus';
import { HttpApi } from './http-api';
import { isOriginAllowed } from './origin';
import { protocolCloseCode, Session } from './session';
import { TaskEventRouter } from './task-events';
import { TaskOperations } from './task-operations';
import { GATEWAY_VERSION } from './version';

/** Options of {@link Gateway.start}. */
export interface GatewayOptions {
  /** Defaults to a JSON logger on stdout at the configured level. */
  logger?: Logger;
}

/** Readiness of a replica, as `GET /readyz` reports it. */
export interface Readiness {
  ready: boolean;
  redis: boolean;
  bus: boolean;
  draining: boolean;
}

/** How long a refused upgrade's socket may stay half-open after the refusal was sent. */
const REFUSED_SOCKET_LINGER_MS = 2_000;
/** How often the drain closes its next batch of connections. */
const DRAIN_TICK_MS = 50;
/**
 * After the drain window, how long requests still being handled get to be answered before their
 * connections close (with 1012 rather than 1001 if they are not). A Redis round trip or two.
 */
const FINAL_ANSWERS_GRACE_MS = 1_000;
/** Then how long clients get to answer the close frames before their connections are cut. */
const CLOSE_HANDSHAKE_GRACE_MS = 1_000;
/**
 * Beyond the drain window, how long a draining replica's agents are reported as moving (calls get
 * `AGENT_UNAVAILABLE`, retryable) while they reconnect elsewhere, before an agent that did not come
 * back is unknown again (`AGENT_NOT_FOUND`). Covers the SDK's reconnection backoff with margin.
 */
const AGENT_MOVE_GRACE_MS = 5_000;

/** How many of the newest audit entries a cluster snapshot carries. */
const AUDIT_TAIL = 25;

/** The cluster at a glance, as `GET /v1/cluster` and `cluster.snapshot` events carry it. */
export interface ClusterStatus {
  at: number;
  /**
   * `cluster` for the operators' tenant: every figure. `tenant` for any other tenant: the replicas'
   * health only, and no figure that spans tenants (traffic, workers, queue, validators, Redis details).
   */
  scope: 'cluster' | 'tenant';
  replicas: (ReplicaHealth & Partial<Omit<ReplicaReport, 'requests' | 'coordinatorLatencyMs'>>)[];
  /** Each replica's request counters since it started, and its latency window. */
  requests: Pick<ReplicaReport, 'replicaId' | 'requests' | 'coordinatorLatencyMs'>[];
  workers: Record<string, string>[];
  agents: unknown[];
  queue: Record<string, number> | null;
  /** The tenant's approvals waiting for a decision. */
  approvalsPending: number;
  redis: RedisHealth;
  /** Governance verdicts and timings by validator, summed over the live replicas and workers. */
  validators: ValidatorSummary[];
  /** The tenant's newest audit entries, oldest first: only for principals with `audit:read`. */
  audit?: AuditEntry[];
}

export interface GatewayStatus {
  replicaId: string;
  version: string;
  startedAt: string;
  uptimeMs: number;
  ready: boolean;
  draining: boolean;
  connections: number;
  inFlight: number;
  agents: LocalAgentStatus[];
}

const WS_PATHS = new Set(['/', '/ws']);
/** Audit stream of events with no authenticated tenant (failed authentications). */
export const UNAUTHENTICATED_TENANT = '_unauthenticated';
const STATUS_TEXT: Record<number, string> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};
/** How often audit trails are trimmed to their retention period. */
const AUDIT_TRIM_INTERVAL_MS = 3_600_000;
/** How often live connections are checked against revoked and expired credentials. */
const CREDENTIAL_CHECK_MS = 1000;

/**
 * One gateway replica: HTTP and WebSocket on one port, attached to the cluster through Redis.
 * Stateless: everything another replica needs is in Redis; killing it loses only its sockets.
 *
 * @example
 * const gateway = await Gateway.start(loadGatewayConfig({ env: process.env }));
 * // ... later
 * await gateway.close();
 */
export class Gateway {
  readonly config: GatewayConfig;
  readonly logger: Logger;
  readonly registry: AgentRegistry;
  readonly metrics = new GatewayMetrics();
  /** What this replica shares with every member of the cluster: Redis, bus, registry, tasks, policy, governance. */
  private readonly node: ClusterNode;
  private readonly redis: Redis;
  private readonly keys: RedisKeys;
  private readonly subscriber: Redis;
  /** The producer connection of the task queue (BullMQ keeps its own scripts on it). */
  private readonly queueConnection: Redis;
  private readonly bus: RedisClusterBus;
  /** Async tasks and workflows. */
  readonly asyncTasks: AsyncTasks;
  /** The task operations of both transports. */
  readonly tasks: TaskOperations;
  private readonly taskEvents: TaskEventRouter;
  private readonly dispatcher: TaskDispatcher;
  private readonly agents: AgentHost;
  private readonly httpAgents: HttpAgentClient;
  private readonly authenticator: Authenticator;
  private readonly lockout: AuthLockout;
  /** The tamper-evident audit trail. */
  readonly audit: AuditLog;
  /** Stored API keys, when OPENCLAW_API_KEY_SECRET is set. */
  readonly apiKeys: ApiKeyStore | undefined;
  private credentialTimer: NodeJS.Timeout | undefined;
  private connectionTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private readonly connections: ConnectionLimiter;
  /** Decides permissions through the cluster's policy. */
  readonly authorizer: Authorizer;
  /** The governance pipeline of the policy in force, on every routed message. */
  readonly governance: GovernanceGate;
  /** Messages parked for a human's approval, cluster-wide. */
  readonly approvals: Approvals;
  /** This replica's metrics in the Prometheus format (`GET /metrics`). */
  readonly prometheus: GatewayPrometheus;
  /** Every replica's report, for the cluster-wide views. */
  readonly clusterView: ClusterView;
  /** Connections watching the cluster. */
  readonly clusterWatch: ClusterWatch;
  private readonly sessions = new Set<Session>();
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly context: HandlerContext;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private draining = false;
  /** Upgrades past the connection cap check and not yet sessions (they count against the cap). */
  private admitting = 0;
  private closing: Promise<void> | undefined;

  private constructor(config: GatewayConfig, logger: Logger, validators: Validator[]) {
    this.config = config;
    this.logger = logger;
    const node = new ClusterNode({
      id: config.replicaId,
      redisUrl: config.redisUrl,
      keyPrefix: config.keyPrefix,
      auditSecret: config.auditSecret,
      logger,
      presenceTtlMs: config.presenceTtlMs,
      httpAgents: {
        allowPrivate: config.httpAgentsAllowPrivateResolved,
        maxResponseBytes: config.maxFrameBytes,
        maxJsonDepth: config.maxJsonDepth,
      },
      taskDefaults: asyncTaskDefaults(config),
      validators,
      onRouted: (route, seconds) => this.prometheus.observeRouted(route, seconds),
    });
    this.node = node;
    const keys = node.keys;
    this.keys = keys;
    this.redis = node.redis;
    this.subscriber = node.subscriber;
    this.queueConnection = node.queueConnection;
    this.bus = node.bus;
    this.registry = node.registry;
    const store = node.store;
    this.httpAgents = node.httpAgents;
    this.authorizer = node.authorizer;
    this.audit = node.audit;
    this.governance = node.governance;
    this.dispatcher = node.dispatcher;
    this.agents = new AgentHost(this.bus, this.registry, logger);
    const ledger = node.ledger;
    this.asyncTasks = node.asyncTasks;
    this.approvals = node.approvals;
    const sessions = this.sessions;
    this.prometheus = new GatewayPrometheus({
      redis: { command: this.redis, subscriber: this.subscriber, queue: this.queueConnection },
      bus: this.bus,
      audit: this.audit,
      governance: this.governance,
      approvals: this.approvals,
      queue: this.asyncTasks.queue,
      counters: this.metrics,
      connectionsByRole: () => {
        let agent = 0;
        for (const session of sessions) if (session.instances.size > 0) agent += 1;
        return { agent, client: sessions.size - agent };
      },
      inFlight: () => this.dispatcher.inFlight,
      outboundBuffered: () => {
        let bytes = 0;
        let largest = 0;
        for (const session of sessions) {
          const queued = session.socket.bufferedAmount;
          bytes += queued;
          largest = Math.max(largest, queued);
        }
        return { bytes, largest };
      },
    });
    this.metrics.onCall = (ms) => this.prometheus.observeCall(ms / 1000);
    this.clusterWatch = new ClusterWatch(
      (tenant) => this.clusterStatus(tenant, { audit: true }),
      (session) => this.authorizer.can(session.principal, 'audit:read'),
    );
    this.clusterView = new ClusterView(this.redis, keys, () => {
      const snapshot = this.metrics.snapshot(config.replicaId, this.dispatcher.inFlight);
      let agent = 0;
      for (const session of sessions) if (session.instances.size > 0) agent += 1;
      return {
        replicaId: config.replicaId,
        version: GATEWAY_VERSION,
        port: this.port,
        startedAt: this.metrics.startedAt,
        ready: this.readiness().ready,
        draining: this.draining,
        connections: { agent, client: sessions.size - agent },
        inFlight: this.dispatcher.inFlight,
        requests: snapshot.requests,
        coordinatorLatencyMs: snapshot.coordinatorLatencyMs,
        validators: this.governance.stats(),
      };
    });
    this.apiKeys = config.apiKeySecret === '' ? undefined : new ApiKeyStore(this.redis, keys, config.apiKeySecret);
    this.connections = new ConnectionLimiter(this.redis, keys);
    this.lockout = new AuthLockout(this.redis, keys, {
      maxFailures: config.authMaxFailures,
      windowMs: config.authFailureWindowMs,
      lockoutMs: config.authLockoutMs,
    });
    this.authenticator = createAuthenticator(config, this.apiKeys);
    this.taskEvents = new TaskEventRouter(this.subscriber, keys, ledger, this.authorizer, logger);
    this.tasks = new TaskOperations({
      asyncTasks: this.asyncTasks,
      store,
      authorizer: this.authorizer,
      audit: this.audit,
    });
    this.context = {
      tasks: this.tasks,
      replicaId: config.replicaId,
      registry: this.registry,
      dispatcher: this.dispatcher,
      store,
      asyncTasks: this.asyncTasks,
      approvals: this.approvals,
      clusterWatch: this.clusterWatch,
      schemaStore: { redis: this.redis, key: (tenant, agent) => keys.agentSchemas(tenant, agent) },
      taskEvents: this.taskEvents,
      agents: this.agents,
      metrics: this.metrics,
      audit: this.audit,
      authorizer: this.authorizer,
      delegations: config.delegationSecret === '' ? undefined : new DelegationIssuer(config.delegationSecret),
      apiKeys: this.apiKeys,
      auditRequired: config.auditRequired,
      auditPayloads: config.auditPayloads,
      logger,
      limits: {
        maxFrameBytes: config.maxFrameBytes,
        maxJsonDepth: config.maxJsonDepth,
        heartbeatMs: config.heartbeatMs,
        defaultTimeoutMs: config.defaultTimeoutMs,
        maxInFlightPerConnection: config.maxInFlightPerConnection,
      },
    };
    const api = new HttpApi(this);
    this.server = createServer((req, res) => api.handle(req, res));
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.maxFrameBytes,
      // Off on purpose: permessage-deflate fragments memory and has a history of leaks under load.
      perMessageDeflate: false,
      clientTracking: false,
    });
  }

  /** Connects to Redis, joins the cluster and listens. Rejects if Redis cannot be reached in 10 s. */
  static async start(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
    const logger =
      options.logger ??
      createLogger({ level: config.logLevel, format: config.logFormat, base: { replicaId: config.replicaId } });
    const gateway = new Gateway(config, logger, await loadCustomValidators(config.validators));
    try {
      await gateway.open();
    } catch (error) {
      await gateway.close();
      throw error;
    }
    return gateway;
  }

  /** The port actually listened on (useful with port 0). */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  readiness(): Readiness {
    const redis = this.redis.status === 'ready';
    const bus = this.bus.healthy();
    return { ready: redis && bus && !this.draining, redis, bus, draining: this.draining };
  }

  /** This replica's status, with its agents of one tenant (or of every tenant, named `<tenant>/<agent>`). */
  status(tenant?: string): GatewayStatus {
    return {
      replicaId: this.config.replicaId,
      version: GATEWAY_VERSION,
      startedAt: new Date(this.metrics.startedAt).toISOString(),
      uptimeMs: Date.now() - this.metrics.startedAt,
      ready: this.readiness().ready,
      draining: this.draining,
      connections: this.sessions.size,
      inFlight: this.dispatcher.inFlight,
      agents: this.agents.localAgents(tenant),
    };
  }

  /**
   * The whole cluster at a glance (`openclaw gateway status`, `cluster.watch`): every live replica's
   * report, the workers, a tenant's agents, the queue and Redis. Only the operators' tenant gets the
   * figures that span tenants; another tenant gets its own agents, approvals and audit, and the
   * replicas' health.
   */
  async clusterStatus(tenant: string, options: { audit?: boolean } = {}): Promise<ClusterStatus> {
    if (tenant !== OPERATORS_TENANT) return this.tenantStatus(tenant, options);
    const view = this.clusterView;
    const [replicas, workers, agents, queue, redis, pending, audit] = await Promise.all([
      view.replicas(),
      this.workerReports().catch(() => []),
      this.registry.list(tenant).catch(() => []),
      this.asyncTasks.queue.counts().catch(() => undefined),
      view.redisHealth(),
      this.approvals.pendingCounts().catch(() => ({}) as Record<string, number>),
      options.audit ? this.audit.tail(tenant, AUDIT_TAIL).catch(() => undefined) : undefined,
    ]);
    return {
      at: Date.now(),
      scope: 'cluster',
      replicas: replicas.map(
        ({ requests: _requests, coordinatorLatencyMs: _latency, validators: _validators, ...rest }) => rest,
      ),
      requests: replicas.map((r) => ({
        replicaId: r.replicaId,
        requests: r.requests,
        coordinatorLatencyMs: r.coordinatorLatencyMs,
      })),
      workers: workers.map((w) => w.info),
      agents,
      queue: queue ?? null,
      approvalsPending: Object.hasOwn(pending, tenant) ? (pending[tenant] ?? 0) : 0,
      redis,
      validators: summarizeValidators([...replicas, ...workers]),
      ...(audit === undefined ? {} : { audit }),
    };
  }

  /** {@link clusterStatus} for a tenant other than the operators'. */
  private async tenantStatus(tenant: string, options: { audit?: boolean }): Promise<ClusterStatus> {
    const [replicas, agents, reachable, pending, audit] = await Promise.all([
      this.clusterView.replicas(),
      this.registry.list(tenant).catch(() => []),
      this.clusterView.redisHealth().then((r) => r.reachable),
      this.approvals.pendingCounts().catch(() => ({}) as Record<string, number>),
      options.audit ? this.audit.tail(tenant, AUDIT_TAIL).catch(() => undefined) : undefined,
    ]);
    return {
      at: Date.now(),
      scope: 'tenant',
      replicas: replicas.map(({ replicaId, version, startedAt, ready, draining, at }) => ({
        replicaId,
        version,
        startedAt,
        ready,
        draining,
        at,
      })),
      requests: [],
      workers: [],
      agents,
      queue: null,
      approvalsPending: Object.hasOwn(pending, tenant) ? (pending[tenant] ?? 0) : 0,
      redis: { reachable },
      validators: [],
      ...(audit === undefined ? {} : { audit }),
    };
  }

  /** The live worker processes, from their heartbeats. */
  async workers(): Promise<Record<string, string>[]> {
    return (await this.workerReports()).map((w) => w.info);
  }

  /** The live workers' heartbeats, and the governance counters each reports apart. */
  private async workerReports(): Promise<
    { info: Record<string, string>; validators: Record<string, ValidatorStats> | undefined }[]
  > {
    const ids = await this.redis.zrangebyscore(this.keys.workers(), Date.now(), '+inf');
    const out: { info: Record<string, string>; validators: Record<string, ValidatorStats> | undefined }[] = [];
    for (const id of ids) {
      const { validators, ...info } = await this.redis.hgetall(this.keys.worker(id));
      if (!info.workerId) continue;
      let parsed: Record<string, ValidatorStats> | undefined;
      try {
        parsed = validators === undefined ? undefined : (JSON.parse(validators) as Record<string, ValidatorStats>);
      } catch {
        parsed = undefined;
      }
      out.push({ info, validators: parsed });
    }
    return out;
  }

  metricsSnapshot(): MetricsSnapshot & {
    audit: { failures: number; healthy: boolean };
    governance: Record<string, unknown>;
    approvals: { waiting: number };
  } {
    return {
      ...this.metrics.snapshot(this.config.replicaId, this.dispatcher.inFlight),
      audit: { failures: this.audit.failures, healthy: this.audit.healthy() },
      governance: this.governance.stats(),
      // Sync calls on this replica waiting for an approval.
      approvals: { waiting: this.approvals.waiting },
    };
  }

  /**
   * Drains and stops: readiness fails first, new connections are refused, this replica's agents are
   * taken out of routing, calls and agent tasks in flight get up to `drainMs` to finish, then every
   * socket is closed with 1001 and the replica leaves the cluster. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async open(): Promise<void> {
    this.bus.onMessage((message) => {
      switch (message.type) {
        case 'task.dispatch':
          return this.agents.handleDispatch(message);
        case 'task.reply':
          return this.dispatcher.handleReply(message);
        case 'task.abort':
          return this.agents.handleAbort(message);
        case 'task.cancel-request':
          return this.dispatcher.handleCancelRequest(message);
        case 'approval.changed':
          return this.approvals.notify(message.approvalId);
        default:
          return undefined;
      }
    });
    this.bus.onSubscriptionLost(() => {
      this.logger.warn('cluster bus subscription lost; failing calls whose replies cannot arrive');
      this.dispatcher.failRemote('lost the connection to the cluster bus; the reply cannot arrive');
    });
    this.bus.onResubscribed(() => {
      this.logger.info('cluster bus subscription restored; resyncing the registry');
      void this.registry.resync().catch(() => undefined);
      void this.taskEvents.resync(this.sessions);
    });
    let wasReady = false;
    this.redis.on('ready', () => {
      // After an outage Redis may have restarted empty: put this replica's agents back.
      if (wasReady) void this.registry.resync().catch(() => undefined);
      wasReady = true;
    });
    await this.node.open();
    this.taskEvents.start();
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    this.server.on('clientError', (_error, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.config.heartbeatMs);
    this.heartbeatTimer.unref();
    this.clusterView.start();
    this.credentialTimer = setInterval(() => void this.checkCredentials(), CREDENTIAL_CHECK_MS);
    this.credentialTimer.unref();
    this.connectionTimer = setInterval(
      () =>
        void this.connections.refresh([...this.sessions].map((s) => ({ principal: s.principal.id, sessionId: s.id }))),
      CONNECTION_ENTRY_TTL_MS / 3,
    );
    this.connectionTimer.unref();
    if (this.config.auditRetentionDays > 0) {
      this.retentionTimer = setInterval(() => void this.trimAudit(), AUDIT_TRIM_INTERVAL_MS);
      this.retentionTimer.unref();
    }
    // Trails a replica of an earlier version wrote last have no sealed head yet: seal them.
    void this.audit.sealAll().catch(() => 0);
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const header = req.headers.traceparent;
    // The connection's span: the upgrade's checks (origin, credentials, connection slot), continuing
    // a `traceparent` header. Requests on the connection make traces of their own.
    const checked = inSpan(
      'openclaw connect',
      {
        kind: SpanKind.SERVER,
        parent: contextOf(typeof header === 'string' ? header : undefined),
        attributes: { 'openclaw.replica': this.config.replicaId },
      },
      async (span) => {
        const admitted = await this.checkUpgrade(req);
        if (admitted instanceof GatewayError) {
          span.setAttribute('openclaw.outcome', admitted.code);
          span.setStatus({ code: SpanStatusCode.ERROR, message: admitted.code });
        } else {
          span.setAttribute('openclaw.outcome', 'accepted');
          span.setAttribute('openclaw.session', admitted.sessionId);
        }
        return admitted;
      },
    );
    // From its cap check (already made) until its session exists or it fails, this upgrade holds a
    // place under OPENCLAW_MAX_CONNECTIONS, so concurrent upgrades cannot overshoot the cap.
    this.admitting += 1;
    let holding = true;
    const release = (): void => {
      if (holding) this.admitting -= 1;
      holding = false;
    };
    socket.once('close', release);
    const settled = checked.catch((error: unknown) => {
      this.logger.error({ err: error }, 'unexpected error while checking an upgrade');
      return new GatewayError('INTERNAL', 'internal error');
    });
    void settled.then((admitted) => {
      if (admitted instanceof GatewayError) {
        release();
        if (!socket.destroyed) this.refuse(socket, admitted);
        return;
      }
      const slot = (): void => this.connections.release(admitted.principal.id, admitted.sessionId);
      if (socket.destroyed) {
        release();
        slot();
        return;
      }
      const address = clientAddress(
        req.socket.remoteAddress,
        req.headers['x-forwarded-for'],
        this.config.trustedProxies,
      );
      // ws refuses a bad handshake (400) by destroying the socket without calling back: the
      // principal's connection slot is given back then.
      socket.once('close', slot);
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        socket.off('close', slot);
        release();
        this.accept(ws, admitted.principal, address, admitted.sessionId);
      });
    });
  }

  /**
   * The principal of an upgrade request and the connection slot it took (see
   * OPENCLAW_PRINCIPAL_MAX_CONNECTIONS), or why it is refused. Never rejects.
   */
  private async checkUpgrade(
    req: IncomingMessage,
  ): Promise<{ principal: Principal; sessionId: string } | GatewayError> {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://gateway.invalid').pathname;
    } catch {
      return new GatewayError('BAD_REQUEST', 'the request URL is not valid');
    }
    if (this.draining) return new GatewayError('UNAVAILABLE', 'this replica is draining; connect to another');
    const cap = this.config.maxConnections;
    if (this.sessions.size + this.admitting >= cap) {
      return new GatewayError(
        'UNAVAILABLE',
        `this replica holds its maximum of ${cap} connections; connect to another`,
        {
          // Spread: clients told the same moment should not all come back the same moment.
          retryAfterMs: 1000 + Math.floor(Math.random() * 2000),
          details: { scope: 'replica', limit: cap },
        },
      );
    }
    if (!WS_PATHS.has(path)) return new GatewayError('NOT_FOUND', 'WebSocket endpoints are / and /ws');
    if (this.config.auditRequired && !this.audit.healthy()) {
      return new GatewayError('UNAVAILABLE', 'the audit trail cannot be written now; refusing to serve unaudited');
    }
    if (!isOriginAllowed(req.headers.origin, this.config, req.headers.host)) {
      this.auditOriginRefused(req, path);
      return new GatewayError('FORBIDDEN', 'this Origin is not allowed to connect');
    }
    let principal: Principal;
    try {
      principal = await this.authenticateRequest(req);
    } catch (error) {
      return error instanceof GatewayError ? error : new GatewayError('UNAUTHENTICATED', 'authentication failed');
    }
    const sessionId = randomUUID();
    const limit = this.maxConnections(principal);
    if (!(await this.connections.acquire(principal.id, sessionId, limit))) {
      return new GatewayError('RATE_LIMITED', `this principal already has its maximum of ${limit} connections`, {
        retryAfterMs: 1000,
        details: { scope: 'connections', limit },
      });
    }
    return { principal, sessionId };
  }

  /** The most live connections a principal may hold: its roles' overrides, else the default. */
  private maxConnections(principal: Principal): number {
    const overrides = principal.roles
      .map((role) => this.config.roleRates[role]?.connections)
      .filter((n): n is number => n !== undefined);
    return overrides.length > 0 ? Math.max(...overrides) : this.config.principalMaxConnections;
  }

  private refuse(socket: Duplex, error: GatewayError): void {
    this.metrics.connectionsRejected += 1;
    const status = httpStatusOf(error.code);
    const body = JSON.stringify({ error: error.toWire() });
    const retryAfter =
      error.retryAfterMs === undefined ? '' : `Retry-After: ${Math.ceil(error.retryAfterMs / 1000)}\r\n`;
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
        `Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retryAfter}Connection: close\r\n\r\n${body}`,
    );
    // A client that reads the refusal and never closes its side must not hold the socket open.
    const linger = setTimeout(() => socket.destroy(), REFUSED_SOCKET_LINGER_MS).unref();
    socket.once('close', () => clearTimeout(linger));
  }

  private accept(ws: WebSocket, principal: Principal, address: string, sessionId: string): void {
    const session = new Session(ws, principal, this.callLimits(principal), {
      id: sessionId,
      maxBufferedBytes: this.config.maxBufferedBytes,
      rateLimitPerSecond: this.config.rateLimitPerSecond,
      rateLimitBurst: this.config.rateLimitBurst,
      onClose: (code) => this.metrics.countClose(code),
    });
    this.sessions.add(session);
    this.taskEvents.attach(session);
    this.audit.record(principal.tenant, {
      type: 'connection.opened',
      principal: principal.id,
      outcome: 'ok',
      details: { session: session.id, address },
    });
    this.metrics.connectionsCurrent += 1;
    this.metrics.connectionsTotal += 1;
    ws.on('message', (data, isBinary) => {
      session.missedPongs = 0;
      handleFrame(this.context, session, data as Buffer, isBinary);
    });
    ws.on('pong', () => {
      session.missedPongs = 0;
    });
    ws.on('error', (error) => {
      // ws closes the socket itself (1009 for an oversize frame); only record it.
      const code = protocolCloseCode(error);
      if (code !== undefined) session.closedByProtocol(code);
      this.logger.debug({ err: error.message, session: session.id }, 'websocket error');
    });
    ws.on('close', (code) => {
      // The code the gateway sent if it closed first: ws reports 1006 when the peer's close frame
      // never comes back (always, after ws closed for an oversize frame).
      const sent = session.closeCode;
      this.audit.record(principal.tenant, {
        type: 'connection.closed',
        principal: principal.id,
        outcome: 'ok',
        details: { session: session.id, code: sent ?? code, closedBy: sent === undefined ? 'peer' : 'gateway' },
      });
      this.sessions.delete(session);
      this.taskEvents.detach(session);
      this.clusterWatch.unwatch(session);
      this.connections.release(principal.id, session.id);
      this.metrics.connectionsCurrent -= 1;
      void this.agents.detach(session);
    });
  }

  /** Records a request refused for its `Origin` (before any credential is read: no tenant yet). */
  auditOriginRefused(req: IncomingMessage, path: string): void {
    this.audit.record(UNAUTHENTICATED_TENANT, {
      type: 'origin.refused',
      outcome: 'FORBIDDEN',
      details: {
        address: clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], this.config.trustedProxies),
        origin: String(req.headers.origin ?? '').slice(0, 256),
        path,
      },
    });
  }

  /**
   * Authenticates an upgrade or HTTP request, with lockout: an address with too many recent failures
   * is refused (`RATE_LIMITED`, HTTP 429) whatever it sends, on every replica.
   */
  async authenticateRequest(req: IncomingMessage): Promise<Principal> {
    if (this.config.auth === 'none')
      return this.authenticator.authenticate({ headers: req.headers, url: req.url ?? '/' });
    const address = clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], this.config.trustedProxies);
    const locked = await this.lockout.lockedFor(address);
    if (locked > 0) {
      this.audit.record(UNAUTHENTICATED_TENANT, {
        type: 'auth.locked',
        outcome: 'RATE_LIMITED',
        details: { address, path: (req.url ?? '/').split('?')[0] ?? '/' },
      });
      throw new GatewayError('RATE_LIMITED', 'too many failed authentications from this address; try again later', {
        retryAfterMs: locked,
      });
    }
    try {
      return await this.authenticator.authenticate({ headers: req.headers, url: req.url ?? '/' });
    } catch (error) {
      if (error instanceof GatewayError && error.code === 'UNAUTHENTICATED') {
        this.audit.record(UNAUTHENTICATED_TENANT, {
          type: 'auth.failed',
          outcome: error.code,
          details: { address, reason: error.message, path: (req.url ?? '/').split('?')[0] ?? '/' },
        });
        if (await this.lockout.recordFailure(address)) {
          this.logger.warn({ address }, 'locked out an address after repeated failed authentications');
        }
      }
      throw error;
    }
  }

  /** Trims every tenant's audit trail to the retention period (idempotent: every replica may run it). */
  async trimAudit(): Promise<void> {
    const before = Date.now() - this.config.auditRetentionDays * 86_400_000;
    for (const tenant of await this.audit.tenants().catch(() => [])) {
      await this.audit.seal(tenant).catch(() => false);
      const removed = await this.audit.trim(tenant, before).catch(() => 0);
      if (removed > 0) this.logger.info({ tenant, removed }, 'trimmed audit entries past retention');
    }
  }

  /** The cluster-wide call limits of a principal: its roles' overrides, else the defaults. */
  callLimits(principal: Principal): CallLimits {
    const overrides = principal.roles.map((role) => this.config.roleRates[role]).filter((r) => r !== undefined);
    const own =
      overrides.length > 0
        ? { rate: Math.max(...overrides.map((r) => r.rate)), burst: Math.max(...overrides.map((r) => r.burst)) }
        : { rate: this.config.principalRate, burst: this.config.principalBurst };
    const tenantRate = this.config.tenantRate;
    return {
      principal: { id: principal.id, rate: own.rate, burst: Math.max(own.burst, own.rate > 0 ? 1 : 0) },
      tenant: {
        id: principal.tenant,
        rate: tenantRate,
        burst: Math.max(this.config.tenantBurst, tenantRate > 0 ? 1 : 0),
      },
    };
  }

  /**
   * Closes (1008) the connections whose API key was revoked, on any replica, or whose credential
   * expired. Reads the revoked set in Redis every second, so a lost message cannot leave a revoked
   * connection open.
   */
  async checkCredentials(): Promise<void> {
    const now = Date.now();
    const byKey = new Map<string, Session[]>();
    for (const session of this.sessions) {
      const p = session.principal;
      if (p.expiresAt !== undefined && p.expiresAt <= now) {
        session.close(CloseCode.POLICY, 'credentials expired');
        continue;
      }
      if (p.apiKeyId !== undefined) byKey.set(p.apiKeyId, [...(byKey.get(p.apiKeyId) ?? []), session]);
    }
    if (!this.apiKeys || byKey.size === 0 || this.redis.status !== 'ready') return;
    const revoked = await this.apiKeys.revokedAmong([...byKey.keys()]).catch(() => new Set<string>());
    for (const id of revoked) {
      for (const session of byKey.get(id) ?? []) session.close(CloseCode.POLICY, 'credentials revoked');
    }
  }

  private heartbeat(): void {
    for (const session of this.sessions) {
      if (session.missedPongs >= 2) {
        this.metrics.countClose(1006);
        session.terminate();
        continue;
      }
      session.missedPongs += 1;
      try {
        session.socket.ping();
      } catch {
        session.terminate();
      }
    }
  }

  /**
   * The drain's closing of connections, a batch at a time, at `OPENCLAW_DRAIN_CLOSE_RATE` per second
   * or faster if needed to be done within half the drain window; agents first (callers reconnecting
   * elsewhere then find them registered there). An idle connection (nothing being handled, no task
   * held by its agents) is closed with 1001 at its turn. A busy one is told to leave: it is refused new
   * requests (`UNAVAILABLE`, retryable, `dispatched: false`), and closed with 1001 as soon as its work
   * is done. Returns when every connection is closed or at the deadline.
   */
  private async closeInBatches(deadline: number): Promise<void> {
    const start = Date.now();
    const spreadUntil = start + (deadline - start) / 2;
    const isIdle = (s: Session) => s.handling === 0 && s.inFlight === 0 && this.agents.openTasksOf(s) === 0;
    const perSecond = Math.max(
      this.config.drainCloseRate,
      this.sessions.size / Math.max((spreadUntil - start) / 1000, 0.001),
    );
    const closed = new Set<Session>();
    const close = (session: Session) => {
      session.close(CloseCode.GOING_AWAY, DRAIN_CLOSE_REASON);
      closed.add(session);
    };
    let allowance = 0;
    let last = start;
    const open = () => [...this.sessions].filter((s) => !closed.has(s));
    while (open().length > 0 && Date.now() < deadline) {
      const now = Date.now();
      allowance += ((now - last) / 1000) * perSecond;
      last = now;
      for (const session of open()) if (session.leaving && isIdle(session)) close(session);
      const turn = open()
        .filter((s) => !s.leaving)
        .sort((a, b) => b.instances.size - a.instances.size || Number(isIdle(b)) - Number(isIdle(a)));
      // At least one per tick, all of them once the spreading time is over.
      const count = now >= spreadUntil ? turn.length : Math.max(1, Math.floor(allowance));
      for (const session of turn.slice(0, count)) {
        if (isIdle(session)) close(session);
        else session.leaving = true;
        allowance -= 1;
      }
      allowance = Math.max(0, allowance);
      if (open().length > 0) await new Promise((resolve) => setTimeout(resolve, DRAIN_TICK_MS));
    }
  }

  private async shutdown(): Promise<void> {
    this.draining = true;
    this.clusterWatch.close();
    await this.clusterView.stop(this.config.replicaId);
    clearInterval(this.heartbeatTimer);
    clearInterval(this.credentialTimer);
    clearInterval(this.connectionTimer);
    clearInterval(this.retentionTimer);
    const deadline = Date.now() + this.config.drainMs;
    // New tasks go to other replicas' instances; ours finish what they hold.
    await this.agents.withdraw(this.config.drainMs + AGENT_MOVE_GRACE_MS);
    await this.closeInBatches(deadline);
    // The window is over. Dispatch nothing more, and answer the calls still waiting (their agents have
    // the tasks) before the close frames: a 1001 promises that what it leaves unanswered was never
    // dispatched. A request still being handled (in the middle of its pick, whose script may already
    // have sent the task to an agent) is answered first too; one not answered within a grace closes
    // its connection with 1012, which promises nothing.
    this.dispatcher.close();
    this.dispatcher.failAll('this replica is shutting down');
    const answeredBy = Date.now() + FINAL_ANSWERS_GRACE_MS;
    while ([...this.sessions].some((s) => s.handling > 0) && Date.now() < answeredBy) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_TICK_MS));
    }
    for (const session of this.sessions) {
      if (session.handling > 0) session.close(CloseCode.SERVICE_RESTART, 'replica stopped before answering');
      else session.close(CloseCode.GOING_AWAY, DRAIN_CLOSE_REASON);
    }
    // The closing handshakes complete (each closed connection is audited), or are cut short.
    const closedBy = Date.now() + CLOSE_HANDSHAKE_GRACE_MS;
    while (this.sessions.size > 0 && Date.now() < closedBy) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_TICK_MS));
    }
    for (const session of this.sessions) session.terminate();
    await Promise.allSettled([...this.sessions].map((s) => this.agents.detach(s)));
    await Promise.allSettled([
      new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeAllConnections();
      }),
      new Promise<void>((resolve) => this.wss.close(() => resolve())),
    ]);
    this.taskEvents.stop();
    await this.node.close();
  }
}

/** The authenticator of an auth mode. In `jwt` mode, credentials that are not JWTs are API keys. */
function createAuthenticator(config: GatewayConfig, apiKeys: ApiKeyStore | undefined): Authenticator {
  const keys = config.apiKeys.length > 0 || apiKeys ? new ApiKeyAuthenticator(config.apiKeys, apiKeys) : undefined;
  switch (config.auth) {
    case 'none':
      return new NoAuthenticator();
    case 'apikey':
      return keys ?? new ApiKeyAuthenticator([], undefined);
    case 'jwt':
      return new JwtAuthenticator(
        {
          secret: config.jwtSecret,
          issuer: config.jwtIssuer,
          jwksUrl: config.jwtJwksUrl,
          audience: config.jwtAudience,
          algorithms: config.jwtAlgorithms,
          clockSkewSeconds: config.jwtClockSkewSeconds,
          requireExp: config.jwtRequireExp,
          maxLifetimeSeconds: config.jwtMaxLifetimeSeconds,
          tenantClaim: config.jwtTenantClaim,
          defaultTenant: config.jwtDefaultTenant,
          rolesClaim: config.jwtRolesClaim,
          scopeClaim: config.jwtScopeClaim,
          groupsClaim: config.jwtGroupsClaim,
          introspection: {
            url: config.oauthIntrospectionUrl,
            clientId: config.oauthClientId,
            clientSecret: config.oauthClientSecret,
          },
        },
        keys,
      );
  }
}
