import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type AgentRegistry,
  ApiKeyStore,
  type Approvals,
  type AsyncTasks,
  type AuditLog,
  AuthLockout,
  type Authorizer,
  asyncTaskDefaults,
  type CallLimits,
  ClusterNode,
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
  type Logger,
  loadCustomValidators,
  type Principal,
  type RedisClusterBus,
  type RedisKeys,
  type TaskDispatcher,
  TIMINGS,
  type Validator,
} from '@openclaw/core';
import { CloseCode } from '@openclaw/protocol';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type Redis from 'ioredis';
import { type WebSocket, WebSocketServer } from 'ws';
import type { HandlerContext } from './action-handlers';
import { ConnectionAdmission, createAuthenticator } from './admission';
import { AgentHost } from './agent-host';
import { ClusterSnapshotFeed } from './cluster-snapshot-feed';
import { type ClusterStatus, ClusterStatusReader } from './cluster-status';
import { drainConnections } from './drain';
import { handleFrame } from './frame-handler';
import { GatewayPrometheus } from './gateway-prometheus';
import { HttpApi } from './http/http-api';
import { type MetricsSnapshot, ReplicaCounters } from './replica-counters';
import { ReplicaReports } from './replica-reports';
import type { GatewayStatus, Readiness } from './replica-status';
import { protocolCloseCode, Session } from './session';
import { TaskEventRouter } from './task-events';
import { TaskOperations } from './task-operations';
import { GATEWAY_VERSION } from './version';

/** Options of {@link Gateway.start}. */
export interface GatewayOptions {
  /** Defaults to a JSON logger on stdout at the configured level. */
  logger?: Logger;
}

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
  readonly counters = new ReplicaCounters();
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
  /** Who may connect and call the HTTP API. */
  readonly admission: ConnectionAdmission;
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
  readonly replicaReports: ReplicaReports;
  /** Connections watching the cluster. */
  readonly snapshotFeed: ClusterSnapshotFeed;
  private readonly statusReader: ClusterStatusReader;
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
      counters: this.counters,
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
    this.counters.onCall = (ms) => this.prometheus.observeCall(ms / 1000);
    this.snapshotFeed = new ClusterSnapshotFeed(
      (tenant) => this.clusterStatus(tenant, { audit: true }),
      (session) => this.authorizer.can(session.principal, 'audit:read'),
    );
    this.replicaReports = new ReplicaReports(this.redis, keys, () => {
      const snapshot = this.counters.snapshot(config.replicaId, this.dispatcher.inFlight);
      let agent = 0;
      for (const session of sessions) if (session.instances.size > 0) agent += 1;
      return {
        replicaId: config.replicaId,
        version: GATEWAY_VERSION,
        port: this.port,
        startedAt: this.counters.startedAt,
        ready: this.readiness().ready,
        draining: this.draining,
        connections: { agent, client: sessions.size - agent },
        inFlight: this.dispatcher.inFlight,
        requests: snapshot.requests,
        coordinatorLatencyMs: snapshot.coordinatorLatencyMs,
        validators: this.governance.stats(),
      };
    });
    this.statusReader = new ClusterStatusReader({
      redis: this.redis,
      keys,
      replicaReports: this.replicaReports,
      registry: this.registry,
      queue: this.asyncTasks.queue,
      approvals: this.approvals,
      audit: this.audit,
    });
    this.apiKeys = config.apiKeySecret === '' ? undefined : new ApiKeyStore(this.redis, keys, config.apiKeySecret);
    this.connections = new ConnectionLimiter(this.redis, keys);
    this.admission = new ConnectionAdmission({
      config,
      audit: this.audit,
      authenticator: createAuthenticator(config, this.apiKeys),
      lockout: new AuthLockout(this.redis, keys, {
        maxFailures: config.authMaxFailures,
        windowMs: config.authFailureWindowMs,
        lockoutMs: config.authLockoutMs,
      }),
      connections: this.connections,
      metrics: this.counters,
      logger,
      state: () => ({ draining: this.draining, connections: this.sessions.size + this.admitting }),
    });
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
      snapshotFeed: this.snapshotFeed,
      schemaStore: { redis: this.redis, key: (tenant, agent) => keys.agentSchemas(tenant, agent) },
      taskEvents: this.taskEvents,
      agents: this.agents,
      metrics: this.counters,
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
      startedAt: new Date(this.counters.startedAt).toISOString(),
      uptimeMs: Date.now() - this.counters.startedAt,
      ready: this.readiness().ready,
      draining: this.draining,
      connections: this.sessions.size,
      inFlight: this.dispatcher.inFlight,
      agents: this.agents.localAgents(tenant),
    };
  }

  /** The whole cluster at a glance, as a tenant may see it (see {@link ClusterStatusReader}). */
  clusterStatus(tenant: string, options: { audit?: boolean } = {}): Promise<ClusterStatus> {
    return this.statusReader.clusterStatus(tenant, options);
  }

  /** The live worker processes, from their heartbeats. */
  workers(): Promise<Record<string, string>[]> {
    return this.statusReader.workers();
  }

  metricsSnapshot(): MetricsSnapshot & {
    audit: { failures: number; healthy: boolean };
    governance: Record<string, unknown>;
    approvals: { waiting: number };
  } {
    return {
      ...this.counters.snapshot(this.config.replicaId, this.dispatcher.inFlight),
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
    this.replicaReports.start();
    this.credentialTimer = setInterval(() => void this.checkCredentials(), TIMINGS.credentialCheckMs);
    this.credentialTimer.unref();
    this.connectionTimer = setInterval(
      () =>
        void this.connections.refresh([...this.sessions].map((s) => ({ principal: s.principal.id, sessionId: s.id }))),
      TIMINGS.connectionEntryTtlMs / 3,
    );
    this.connectionTimer.unref();
    if (this.config.auditRetentionDays > 0) {
      this.retentionTimer = setInterval(() => void this.trimAudit(), TIMINGS.auditTrimIntervalMs);
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
        const admitted = await this.admission.check(req);
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
        if (!socket.destroyed) this.admission.refuse(socket, admitted);
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

  private accept(ws: WebSocket, principal: Principal, address: string, sessionId: string): void {
    const session = new Session(ws, principal, this.callLimits(principal), {
      id: sessionId,
      maxBufferedBytes: this.config.maxBufferedBytes,
      rateLimitPerSecond: this.config.rateLimitPerSecond,
      rateLimitBurst: this.config.rateLimitBurst,
      onClose: (code) => this.counters.countClose(code),
    });
    this.sessions.add(session);
    this.taskEvents.attach(session);
    this.audit.record(principal.tenant, {
      type: 'connection.opened',
      principal: principal.id,
      outcome: 'ok',
      details: { session: session.id, address },
    });
    this.counters.connectionsCurrent += 1;
    this.counters.connectionsTotal += 1;
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
      this.snapshotFeed.unwatch(session);
      this.connections.release(principal.id, session.id);
      this.counters.connectionsCurrent -= 1;
      void this.agents.detach(session);
    });
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
        this.counters.countClose(1006);
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

  private async shutdown(): Promise<void> {
    this.draining = true;
    this.snapshotFeed.close();
    await this.replicaReports.stop(this.config.replicaId);
    clearInterval(this.heartbeatTimer);
    clearInterval(this.credentialTimer);
    clearInterval(this.connectionTimer);
    clearInterval(this.retentionTimer);
    await drainConnections({
      sessions: this.sessions,
      agents: this.agents,
      dispatcher: this.dispatcher,
      drainMs: this.config.drainMs,
      closeRate: this.config.drainCloseRate,
    });
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
