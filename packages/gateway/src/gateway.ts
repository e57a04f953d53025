import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RedisClient } from '@openclaw/core';
import {
  type AgentRegistry,
  ApiKeyStore,
  type Approvals,
  type AsyncTasks,
  type AuditLog,
  AuthLockout,
  type Authorizer,
  asyncTaskDefaults,
  ClusterNode,
  ConnectionLimiter,
  createLogger,
  DelegationIssuer,
  type GatewayConfig,
  type GovernanceGate,
  type HttpAgentClient,
  type Logger,
  loadCustomValidators,
  MemoryStore,
  type RedisClusterBus,
  type RedisKeys,
  type RegionLink,
  type ResultCache,
  type SchemaStore,
  StateStore,
  type TaskDispatcher,
  TIMINGS,
  type Validator,
} from '@openclaw/core';
import { ConnectionAdmission, createAuthenticator } from './admission';
import { AgentHost } from './agent-host';
import { ClusterSnapshotFeed } from './cluster-snapshot-feed';
import { type ClusterStatus, ClusterStatusReader } from './cluster-status';
import { drainConnections } from './drain';
import { GatewayPrometheus } from './gateway-prometheus';
import type { HandlerContext } from './handler-context';
import { HttpApi } from './http/http-api';
import { type MetricsSnapshot, ReplicaCounters } from './replica-counters';
import { ReplicaReports } from './replica-reports';
import type { GatewayStatus, Readiness } from './replica-status';
import { SessionHub } from './session-hub';
import { StateWatches } from './state-watches';
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
  /** What this replica shares with every member of the cluster: RedisClient, bus, registry, tasks, policy, governance. */
  private readonly node: ClusterNode;
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  private readonly subscriber: RedisClient;
  /** The producer connection of the task queue (BullMQ keeps its own scripts on it). */
  private readonly queueConnection: RedisClient;
  private readonly bus: RedisClusterBus;
  /** Async tasks and workflows. */
  readonly asyncTasks: AsyncTasks;
  /** The task operations of both transports. */
  readonly tasks: TaskOperations;
  readonly taskEvents: TaskEventRouter;
  /** Shared state of the tenants. */
  readonly state: StateStore;
  private readonly stateWatches: StateWatches;
  /** Conversation threads of the tenants. */
  readonly memory: MemoryStore;
  /** Routes calls: WebSocket `coordinator` calls, calls forwarded by linked regions, MCP tool calls. */
  readonly dispatcher: TaskDispatcher;
  /** The input schemas agents declared (MCP lists them as tools). */
  readonly schemaStore: SchemaStore;
  /** The link to other regions, when this cluster is linked with some. */
  readonly regionLink: RegionLink | undefined;
  /** Outputs of cacheable tasks. */
  readonly resultCache: ResultCache;
  private readonly agents: AgentHost;
  /** Calls HTTP agents and outside MCP servers. */
  readonly httpAgents: HttpAgentClient;
  /** Who may connect and call the HTTP API. */
  readonly admission: ConnectionAdmission;
  /** The tamper-evident audit trail. */
  readonly audit: AuditLog;
  /** Stored API keys, when OPENCLAW_API_KEY_SECRET is set. */
  readonly apiKeys: ApiKeyStore | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private archiveTimer: NodeJS.Timeout | undefined;
  /** Whether a round of moving audit entries to the archive is under way. */
  private archiving = false;
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
  /** The replica's WebSocket connections. */
  private readonly hub: SessionHub;
  private readonly server: Server;
  private draining = false;
  private closing: Promise<void> | undefined;

  private constructor(config: GatewayConfig, logger: Logger, validators: Validator[]) {
    this.config = config;
    this.logger = logger;
    const node = new ClusterNode({
      id: config.replicaId,
      redisUrl: config.redisUrl,
      redisStartupTimeoutMs: config.redisStartupTimeoutMs,
      keyPrefix: config.keyPrefix,
      auditSecret: config.auditSecret,
      auditArchiveDir: config.auditArchiveDir,
      logger,
      presenceTtlMs: config.presenceTtlMs,
      callRecordTtlMs: config.callRecordTtlMs,
      httpAgents: {
        allowPrivate: config.httpAgentsAllowPrivateResolved,
        maxResponseBytes: config.maxFrameBytes,
        maxJsonDepth: config.maxJsonDepth,
      },
      taskDefaults: asyncTaskDefaults(config),
      validators,
      onRouted: (route, seconds) => this.prometheus.observeRouted(route, seconds),
      regions: { region: config.region, peers: config.regionPeers, secret: config.regionSecret },
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
    this.schemaStore = { redis: this.redis, key: (tenant, agent) => keys.agentSchemas(tenant, agent) };
    this.regionLink = node.regions;
    this.resultCache = node.resultCache;
    this.agents = new AgentHost(this.bus, this.registry, logger);
    const ledger = node.ledger;
    this.asyncTasks = node.asyncTasks;
    this.approvals = node.approvals;
    this.prometheus = new GatewayPrometheus({
      redis: { command: this.redis, subscriber: this.subscriber, queue: this.queueConnection },
      bus: this.bus,
      audit: this.audit,
      governance: this.governance,
      approvals: this.approvals,
      queue: this.asyncTasks.queue,
      counters: this.counters,
      connectionsByRole: () => this.hub.byRole(),
      inFlight: () => this.dispatcher.inFlight,
      outboundBuffered: () => this.hub.outboundBuffered(),
      cache: node.resultCache.stats,
    });
    this.counters.onCall = (ms) => this.prometheus.observeCall(ms / 1000);
    this.snapshotFeed = new ClusterSnapshotFeed(
      (tenant) => this.clusterStatus(tenant, { audit: true }),
      (session) => this.authorizer.can(session.principal, 'audit:read'),
    );
    this.replicaReports = new ReplicaReports(this.redis, keys, () => {
      const snapshot = this.counters.snapshot(config.replicaId, this.dispatcher.inFlight);
      return {
        replicaId: config.replicaId,
        version: GATEWAY_VERSION,
        port: this.port,
        startedAt: this.counters.startedAt,
        ready: this.readiness().ready,
        draining: this.draining,
        connections: this.hub.byRole(),
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
    const connections = new ConnectionLimiter(this.redis, keys);
    this.admission = new ConnectionAdmission({
      config,
      audit: this.audit,
      authenticator: createAuthenticator(config, this.apiKeys),
      lockout: new AuthLockout(this.redis, keys, {
        maxFailures: config.authMaxFailures,
        windowMs: config.authFailureWindowMs,
        lockoutMs: config.authLockoutMs,
      }),
      connections,
      metrics: this.counters,
      logger,
      state: () => ({ draining: this.draining, connections: this.hub.connectionCount }),
    });
    this.taskEvents = new TaskEventRouter(node.bus.topics, keys, ledger, this.authorizer, logger);
    this.state = new StateStore({
      redis: this.redis,
      keys,
      logger,
      processId: config.replicaId,
      maxValueBytes: config.stateMaxValueBytes,
    });
    this.stateWatches = new StateWatches(node.bus.topics, logger);
    this.memory = new MemoryStore({
      redis: this.redis,
      keys,
      maxEntries: config.memoryMaxEntries,
      idleMs: config.memoryIdleMs,
      maxAppendBytes: config.stateMaxValueBytes,
    });
    this.tasks = new TaskOperations({
      asyncTasks: this.asyncTasks,
      directory: node.tasks,
      authorizer: this.authorizer,
      audit: this.audit,
    });
    const context: HandlerContext = {
      tasks: this.tasks,
      replicaId: config.replicaId,
      registry: this.registry,
      dispatcher: this.dispatcher,
      store,
      asyncTasks: this.asyncTasks,
      approvals: this.approvals,
      snapshotFeed: this.snapshotFeed,
      schemaStore: this.schemaStore,
      taskEvents: this.taskEvents,
      state: this.state,
      memory: this.memory,
      resultCache: node.resultCache,
      stateWatches: this.stateWatches,
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
    this.hub = new SessionHub({
      config,
      logger,
      audit: this.audit,
      admission: this.admission,
      connections,
      counters: this.counters,
      taskEvents: this.taskEvents,
      snapshotFeed: this.snapshotFeed,
      agents: this.agents,
      apiKeys: this.apiKeys,
      context,
      redisReady: () => this.redis.status === 'ready',
    });
    const api = new HttpApi(this);
    this.server = createServer((req, res) => api.handle(req, res));
  }

  /** Connects to Redis, joins the cluster and listens. Rejects if Redis cannot be reached in 10 s. */
  static async start(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
    const logger =
      options.logger ??
      createLogger({ level: config.logLevel, format: config.logFormat, base: { replicaId: config.replicaId } });
    const gateway = new Gateway(config, logger, await loadCustomValidators(config.validators));
    try {
      await gateway.audit.checkArchive();
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
    const redis = this.node.redisReadiness.ready;
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
      connections: this.hub.sessions.size,
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
        case 'registry.changed':
          return this.registry.changed();
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
      void this.taskEvents.resync(this.hub.sessions);
    });
    let wasReady = false;
    this.redis.on('ready', () => {
      // After an outage Redis may have restarted empty: put this replica's agents back.
      if (wasReady) void this.registry.resync().catch(() => undefined);
      wasReady = true;
    });
    await this.node.open();
    this.taskEvents.start();
    this.state.start();
    this.server.on('upgrade', (req, socket, head) => this.hub.upgrade(req, socket, head));
    this.server.on('clientError', (_error, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.hub.start();
    this.replicaReports.start();
    if (this.config.auditRetentionDays > 0) {
      this.retentionTimer = setInterval(() => void this.trimAudit(), TIMINGS.auditTrimIntervalMs);
      this.retentionTimer.unref();
    }
    if (this.audit.archived) {
      this.archiveTimer = setInterval(() => void this.archiveAudit(), TIMINGS.auditArchiveIntervalMs);
      this.archiveTimer.unref();
    }
    // Trails a replica of an earlier version wrote last have no sealed head yet: seal them.
    void this.audit.sealAll().catch(() => 0);
  }

  /** Closes the connections of revoked or expired credentials now (after a revocation). */
  checkCredentials(): Promise<void> {
    return this.hub.checkCredentials();
  }

  /**
   * Trims every tenant's audit trail to the retention period (idempotent: every replica may run it):
   * with an archive, its whole segments past the period (Redis holds only the recent window).
   */
  async trimAudit(): Promise<void> {
    const before = Date.now() - this.config.auditRetentionDays * 86_400_000;
    for (const tenant of await this.audit.tenants().catch(() => [])) {
      await this.audit.seal(tenant).catch(() => false);
      if (this.audit.archived) {
        const removed = await this.audit.expireArchive(tenant, before).catch((error: unknown) => {
          this.logger.error({ tenant, err: error }, 'could not remove archived audit entries past retention');
          return 0;
        });
        if (removed > 0) this.logger.info({ tenant, segments: removed }, 'removed archived audit days past retention');
        continue;
      }
      const removed = await this.audit.trim(tenant, before).catch(() => 0);
      if (removed > 0) this.logger.info({ tenant, removed }, 'trimmed audit entries past retention');
    }
  }

  /** Moves every tenant's audit entries past the recent window from Redis to the archive. */
  async archiveAudit(): Promise<void> {
    if (this.archiving) return;
    this.archiving = true;
    try {
      const before = Date.now() - this.config.auditArchiveAfterMs;
      for (const tenant of await this.audit.tenants().catch(() => [])) {
        await this.audit.moveToArchive(tenant, before).catch((error: unknown) => {
          this.logger.error({ tenant, err: error }, 'could not move audit entries to the archive');
          return 0;
        });
      }
    } finally {
      this.archiving = false;
    }
  }

  private async shutdown(): Promise<void> {
    this.draining = true;
    this.snapshotFeed.close();
    await this.replicaReports.stop(this.config.replicaId);
    this.hub.stop();
    clearInterval(this.retentionTimer);
    clearInterval(this.archiveTimer);
    await drainConnections({
      sessions: this.hub.sessions,
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
      this.hub.close(),
    ]);
    this.taskEvents.stop();
    this.state.close();
    await this.node.close();
  }
}
