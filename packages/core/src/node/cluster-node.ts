import { AuditLog } from '../audit/audit-log';
import { Authorizer } from '../auth/authorizer';
import { RedisClusterBus } from '../bus/redis-cluster-bus';
import type { RegionPeer } from '../config/region-peers';
import { TIMINGS } from '../config/timings';
import { Approvals } from '../governance/approvals';
import { auditVerdicts, GovernanceGate, validatorAgents } from '../governance/governance-gate';
import type { Validator } from '../governance/validator';
import {
  connectRedis,
  createRedisConnection,
  isCluster,
  type RedisClient,
  RedisReadiness,
} from '../redis/redis-connection';
import { RedisKeys } from '../redis/redis-keys';
import { RegionLink } from '../regions/region-link';
import { AgentRegistry } from '../registry/agent-registry';
import type { AsyncTaskDefaults } from '../tasks/async-task-defaults';
import { AsyncTasks } from '../tasks/async-tasks';
import { CallRecords } from '../tasks/call-records';
import { HttpAgentClient } from '../tasks/http-agent-client';
import { ResultCache } from '../tasks/result-cache';
import { TaskDirectory } from '../tasks/task-directory';
import { TaskDispatcher, type TaskDispatcherOptions } from '../tasks/task-dispatcher';
import { TaskLedger } from '../tasks/task-ledger';
import { TaskQueue } from '../tasks/task-queue';
import type { Logger } from '../telemetry/logger';

/** What a cluster member is built from: its identity, its Redis, and the settings its parts take. */
export interface ClusterNodeOptions {
  /** The replica's or worker's id: its bus inbox, and the names of its Redis connections. */
  id: string;
  redisUrl: string;
  /** How long `open` waits for Redis before it gives up (`OPENCLAW_REDIS_STARTUP_TIMEOUT_MS`). Default 10 s. */
  redisStartupTimeoutMs?: number;
  keyPrefix: string;
  /** Key of the audit trail's hash chain (`OPENCLAW_AUDIT_SECRET`). */
  auditSecret: string;
  /** Folder of the audit archive (`OPENCLAW_AUDIT_ARCHIVE_DIR`); absent: the trail stays in Redis. */
  auditArchiveDir?: string;
  logger: Logger;
  /**
   * How long an agent instance stays listed without a heartbeat. Given by a replica, which hosts
   * agents: the node then announces itself and keeps its agents' presence. A worker hosts none.
   */
  presenceTtlMs?: number;
  /** How long a sync call's record is kept after its last change (`OPENCLAW_CALL_RECORD_TTL_MS`). */
  callRecordTtlMs?: number;
  /** Calls to agents registered by URL: private addresses allowed, largest answer, deepest JSON. */
  httpAgents: { allowPrivate: boolean; maxResponseBytes: number; maxJsonDepth: number };
  /** Retries, timeouts and retention of the async tasks submitted here. */
  taskDefaults: AsyncTaskDefaults;
  /** Custom governance validators (`OPENCLAW_VALIDATORS`), loaded before the node is built. */
  validators?: Validator[];
  /** Each routed call's route and time, for metrics. */
  onRouted?: TaskDispatcherOptions['onRouted'];
  /** This region and the regions it is linked with (`OPENCLAW_REGION`, `..._PEERS`, `..._SECRET`). */
  regions?: { region: string; peers: readonly RegionPeer[]; secret: string };
}

/**
 * One member of the cluster, as a gateway replica and a worker both are: its Redis connections, the
 * cluster bus, the agent registry, the task store, ledger and queue, the policy, the audit trail,
 * governance with its approvals, and the dispatcher that routes calls to agents. Built once, here,
 * with every part given what it needs when it is made; the process around it (a replica's sockets
 * and HTTP API, a worker's BullMQ consumer) adds only its own parts.
 */
export class ClusterNode {
  readonly id: string;
  readonly keys: RedisKeys;
  readonly logger: Logger;
  /** Commands and publishing. */
  readonly redis: RedisClient;
  /** The bus inbox and task event channels (a connection in subscriber mode). */
  readonly subscriber: RedisClient;
  /** The task queue's producer side (BullMQ keeps its own scripts on it). */
  readonly queueConnection: RedisClient;
  /** Whether Redis can serve now (on Redis Cluster: every master answers), for readiness. */
  readonly redisReadiness: RedisReadiness;
  readonly bus: RedisClusterBus;
  readonly registry: AgentRegistry;
  /** Records of sync calls. */
  readonly store: CallRecords;
  /** Records of async tasks and workflows. */
  readonly ledger: TaskLedger;
  readonly asyncTasks: AsyncTasks;
  /** Finds any task by id, sync call or async task. */
  readonly tasks: TaskDirectory;
  readonly httpAgents: HttpAgentClient;
  /** Permissions, through the cluster's policy (followed as it changes). */
  readonly authorizer: Authorizer;
  readonly audit: AuditLog;
  /** Messages parked for a human's approval, cluster-wide. */
  readonly approvals: Approvals;
  /** The governance pipeline of the policy in force, on every routed message. */
  readonly governance: GovernanceGate;
  readonly dispatcher: TaskDispatcher;
  /** Outputs of cacheable tasks, and the single flight of identical calls. */
  readonly resultCache: ResultCache;
  /** The link to other regions, when this cluster is linked with some. */
  readonly regions: RegionLink | undefined;
  private readonly redisUrl: string;
  private readonly redisStartupTimeoutMs: number;
  private readonly hostsAgents: boolean;

  constructor(options: ClusterNodeOptions) {
    const { id, logger } = options;
    this.id = id;
    this.logger = logger;
    this.redisUrl = options.redisUrl;
    this.redisStartupTimeoutMs = options.redisStartupTimeoutMs ?? 10_000;
    this.hostsAgents = options.presenceTtlMs !== undefined;
    const keys = new RedisKeys(options.keyPrefix);
    this.keys = keys;
    const connection = (role: 'command' | 'subscriber', suffix: string): RedisClient =>
      createRedisConnection({ url: options.redisUrl, role, name: `${id}:${suffix}`, logger });
    const redis = connection('command', 'cmd');
    this.redis = redis;
    this.subscriber = connection('subscriber', 'sub');
    this.queueConnection = connection('command', 'queue');
    this.redisReadiness = new RedisReadiness(this.redis);
    this.bus = new RedisClusterBus({ replicaId: id, keys, publisher: redis, subscriber: this.subscriber, logger });
    this.registry = new AgentRegistry({
      redis,
      keys,
      replicaId: id,
      ...(options.presenceTtlMs === undefined ? {} : { presenceTtlMs: options.presenceTtlMs }),
      logger,
      announce: () => void this.bus.broadcast({ type: 'registry.changed' }).catch(() => undefined),
    });
    this.store = new CallRecords(redis, keys, { ttlMs: options.callRecordTtlMs });
    this.ledger = new TaskLedger(redis, keys);
    this.httpAgents = new HttpAgentClient(options.httpAgents);
    this.authorizer = new Authorizer(redis, keys, logger);
    this.audit = new AuditLog({
      redis,
      keys,
      replicaId: id,
      secret: options.auditSecret,
      logger,
      ...(options.auditArchiveDir ? { archiveDir: options.auditArchiveDir } : {}),
    });
    this.tasks = new TaskDirectory(this.ledger, this.store);
    this.asyncTasks = new AsyncTasks({
      redis,
      keys,
      ledger: this.ledger,
      queue: new TaskQueue(this.queueConnection, keys, logger),
      bus: this.bus,
      logger,
      defaults: options.taskDefaults,
    });
    const { asyncTasks, bus } = this;
    this.approvals = new Approvals({
      redis,
      keys,
      topics: bus.topics,
      audit: this.audit,
      onChange: (approval, change) => {
        if (change !== 'decision' && change !== 'expired') return;
        if (approval.status === 'pending') return;
        // Wake what waits for it: the parked task, or the call on the replica that holds it.
        if (approval.mode === 'async') void asyncTasks.queue.wake(approval.taskId).catch(() => undefined);
        else if (approval.origin && approval.origin !== id) {
          void bus.send(approval.origin, { type: 'approval.changed', approvalId: approval.approvalId }).catch(() => 0);
        }
      },
    });
    const authorizer = this.authorizer;
    // Validator agents are called through the dispatcher, which governance itself guards: the
    // dispatcher is made next, and is there by the time any message is judged.
    this.governance = new GovernanceGate({
      policy: () => authorizer.current.document.governance,
      listener: auditVerdicts(this.audit),
      deps: {
        ...validatorAgents({ dispatch: (request) => this.dispatcher.dispatch(request) }),
        budgets: { redis, key: (budget, subject, window) => keys.budget(budget, subject, window) },
        schemas: { redis, key: (tenant, agent) => keys.agentSchemas(tenant, agent) },
      },
      approvals: this.approvals,
      custom: options.validators ?? [],
    });
    if (options.regions && options.regions.peers.length > 0) {
      this.regions = new RegionLink({ ...options.regions, redis, keys, replicaId: id, logger });
    }
    const audit = this.audit;
    this.resultCache = new ResultCache({ redis, keys, topics: this.bus.topics, logger });
    this.dispatcher = new TaskDispatcher({
      cache: this.resultCache,
      // On Redis Cluster an inbox goes quiet while its master fails over, and the holders send their
      // answers again for as long as this: calls wait for them rather than fail at once.
      busLossGraceMs: isCluster(redis) ? TIMINGS.replyRetryMs : 0,
      replicaId: id,
      registry: this.registry,
      bus: this.bus,
      store: this.store,
      http: this.httpAgents,
      logger,
      governance: this.governance,
      ...(options.onRouted ? { onRouted: options.onRouted } : {}),
      ...(this.regions
        ? {
            regions: this.regions,
            onForwarded: (request, region) =>
              audit.record(request.caller.tenant, {
                type: 'task.forwarded',
                principal: request.caller.principal,
                outcome: 'ok',
                details: { agent: request.agent, task: request.task, region },
              }),
          }
        : {}),
    });
  }

  /**
   * Connects its Redis connections (and `extra` ones of the process), joins the bus, announces the
   * replica when it hosts agents, and loads the policy. Rejects if Redis cannot be reached within
   * `redisStartupTimeoutMs`.
   */
  async open(extra: readonly RedisClient[] = []): Promise<void> {
    await Promise.all(
      [this.redis, this.subscriber, this.queueConnection, ...extra].map((client) =>
        connectRedis(client, this.redisUrl, this.redisStartupTimeoutMs),
      ),
    );
    this.redisReadiness.start();
    await this.bus.start();
    if (this.hostsAgents) await this.registry.start();
    await this.registry.startRouting();
    await this.authorizer.start();
    this.regions?.start();
    this.resultCache.start();
  }

  /**
   * Leaves the cluster: stops following the policy, takes its agents out of the registry, flushes
   * the audit trail, closes the bus, HTTP agent connections and the queue, then every Redis
   * connection (and `extra` ones). Call it once the process has stopped using its parts.
   */
  async close(extra: readonly RedisClient[] = []): Promise<void> {
    this.regions?.close();
    this.authorizer.close();
    this.dispatcher.close();
    this.redisReadiness.stop();
    await Promise.allSettled([
      this.hostsAgents ? this.registry.close() : this.registry.routing.table.stop(),
      this.bus.close(),
      this.audit.drain(),
      this.resultCache.close(),
    ]);
    this.httpAgents.close();
    await this.asyncTasks.queue.close().catch(() => undefined);
    await Promise.allSettled([this.redis, this.subscriber, this.queueConnection, ...extra].map(quit));
  }
}

async function quit(client: RedisClient): Promise<void> {
  if (client.status === 'ready') {
    await client.quit().catch(() => client.disconnect());
  } else {
    client.disconnect();
  }
}
