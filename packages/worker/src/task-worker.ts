import type { Server } from 'node:http';
import { hostname } from 'node:os';
import type { RedisClient } from '@openclaw/core';
import {
  type Approvals,
  type AsyncTasks,
  type AuditLog,
  type Authorizer,
  asyncTaskDefaults,
  ClusterNode,
  createLogger,
  createRedisConnection,
  GatewayError,
  type GovernanceGate,
  inSpan,
  isTerminal,
  type Logger,
  loadCustomValidators,
  type RedisClusterBus,
  type RedisKeys,
  TASK_QUEUE_NAME,
  type TaskDispatcher,
  type TaskJobData,
  type TaskQueue,
  TIMINGS,
  type Validator,
  type WorkerConfig,
} from '@openclaw/core';
import { SpanKind } from '@opentelemetry/api';
import { DelayedError, type Job, UnrecoverableError, Worker } from 'bullmq';
import { type RunnerContext, TaskRunner, whileUnavailable } from './task-runner';
import { startWorkerHttp, WorkerMetrics } from './worker-metrics';
import { WorkflowRunner } from './workflow-runner';

/** Options of {@link TaskWorker.start}. */
export interface TaskWorkerOptions {
  logger?: Logger;
}

/** What `openclaw worker status` and the worker's heartbeat report. */
export interface WorkerStatus {
  workerId: string;
  host: string;
  pid: number;
  startedAt: number;
  concurrency: number;
  active: number;
  draining: boolean;
  /** Port of its HTTP endpoints (`/metrics`, `/healthz`, `/readyz`). */
  port?: number;
}

/**
 * One worker process: consumes the task queue, runs async tasks (dispatching each attempt to an
 * agent through the cluster bus, where it has its own inbox like a replica) and workflows. Workers
 * are interchangeable and may die at any moment: a job whose worker died is taken back by another
 * worker once its lock expires (the agent then sees the next `attempt`).
 *
 * @example
 * const worker = await TaskWorker.start(loadWorkerConfig({ env: process.env }));
 * // ... on SIGTERM
 * await worker.close();
 */
export class TaskWorker {
  readonly config: WorkerConfig;
  readonly logger: Logger;
  private readonly keys: RedisKeys;
  /** What this worker shares with every member of the cluster: RedisClient, bus, registry, tasks, policy, governance. */
  private readonly node: ClusterNode;
  private readonly redis: RedisClient;
  private readonly workerConnection: RedisClient;
  private readonly bus: RedisClusterBus;
  private readonly dispatcher: TaskDispatcher;
  private readonly queue: TaskQueue;
  private readonly tasks: AsyncTasks;
  private readonly authorizer: Authorizer;
  private readonly governance: GovernanceGate;
  private readonly approvals: Approvals;
  private readonly audit: AuditLog;
  private readonly metrics: WorkerMetrics;
  private http: { server: Server; port: number } | undefined;
  private readonly startedAt = Date.now();
  private worker: Worker<TaskJobData> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private handingBack = false;
  private draining = false;
  private closing: Promise<void> | undefined;

  private constructor(config: WorkerConfig, logger: Logger, validators: Validator[]) {
    this.config = config;
    this.logger = logger;
    const id = config.workerId;
    const node = new ClusterNode({
      id,
      redisUrl: config.redisUrl,
      redisStartupTimeoutMs: config.redisStartupTimeoutMs,
      keyPrefix: config.keyPrefix,
      auditSecret: config.auditSecret,
      logger,
      // Attempts are governed where they are dispatched, with the policy in force there and then; an
      // HTTP agent's answer is held to the frame limit, as on the gateway.
      httpAgents: {
        allowPrivate: config.workerHttpAgentsAllowPrivate,
        maxResponseBytes: config.maxFrameBytes,
        maxJsonDepth: config.maxJsonDepth,
      },
      // A worker submits nothing itself: the steps it creates take their defaults from their
      // workflow's record (fixed by the gateway at start). These only serve a record written without them.
      taskDefaults: asyncTaskDefaults(),
      validators,
      regions: { region: config.region, peers: config.regionPeers, secret: config.regionSecret },
    });
    this.node = node;
    this.keys = node.keys;
    this.redis = node.redis;
    // BullMQ's worker blocks on Redis and must keep retrying through an outage.
    this.workerConnection = createRedisConnection({
      url: config.redisUrl,
      role: 'subscriber',
      name: `${id}:bull`,
      logger,
    });
    this.bus = node.bus;
    this.dispatcher = node.dispatcher;
    this.queue = node.asyncTasks.queue;
    this.tasks = node.asyncTasks;
    this.authorizer = node.authorizer;
    this.governance = node.governance;
    this.approvals = node.approvals;
    this.audit = node.audit;
    this.metrics = new WorkerMetrics({
      redis: {
        command: node.redis,
        subscriber: node.subscriber,
        queue: node.queueConnection,
        worker: this.workerConnection,
      },
      bus: this.bus,
      audit: this.audit,
      governance: this.governance,
      approvals: this.approvals,
      queue: this.queue,
      activeJobs: () => this.dispatcher.inFlight,
    });
  }

  /** Connects to Redis, joins the bus and starts taking jobs. Rejects if Redis cannot be reached in 10 s. */
  static async start(config: WorkerConfig, options: TaskWorkerOptions = {}): Promise<TaskWorker> {
    const logger =
      options.logger ??
      createLogger({ level: config.logLevel, format: config.logFormat, base: { workerId: config.workerId } });
    const worker = new TaskWorker(config, logger, await loadCustomValidators(config.validators));
    try {
      await worker.open();
    } catch (error) {
      await worker.close();
      throw error;
    }
    return worker;
  }

  get id(): string {
    return this.config.workerId;
  }

  /** Ready to take jobs: Redis and its bus inbox work, and it is not draining. */
  readiness(): { ready: boolean; redis: boolean; bus: boolean; draining: boolean } {
    const redis = this.node.redisReadiness.ready && this.workerConnection.status === 'ready';
    const bus = this.bus.healthy();
    return { ready: redis && bus && !this.draining, redis, bus, draining: this.draining };
  }

  status(): WorkerStatus {
    return {
      workerId: this.id,
      host: hostname(),
      pid: process.pid,
      startedAt: this.startedAt,
      concurrency: this.config.concurrency,
      active: this.dispatcher.inFlight,
      draining: this.draining,
      port: this.http?.port,
    };
  }

  /**
   * Stops taking jobs, gives running ones `workerDrainMs` to finish, hands the rest back to the
   * queue (another worker runs their next attempt at once; their agents get `task.cancel`), and
   * disconnects. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async open(): Promise<void> {
    this.bus.onMessage((message) => {
      switch (message.type) {
        case 'task.reply':
          return this.dispatcher.handleReply(message);
        case 'task.cancel-request':
          return this.dispatcher.handleCancelRequest(message);
        case 'registry.changed':
          return this.node.registry.changed();
        default:
          return undefined;
      }
    });
    this.bus.onSubscriptionLost(() => {
      this.logger.warn(
        'cluster bus subscription lost; failing attempts whose replies cannot arrive (they are retried)',
      );
      this.dispatcher.failRemote('lost the connection to the cluster bus; the reply cannot arrive');
    });
    await this.node.open([this.workerConnection]);
    const context: RunnerContext = {
      workerId: this.id,
      ledger: this.tasks.ledger,
      tasks: this.tasks,
      dispatcher: this.dispatcher,
      approvals: this.approvals,
      logger: this.logger,
      handingBack: () => this.handingBack,
      can: (principal, permission) => this.authorizer.can(principal, permission),
    };
    const taskRunner = new TaskRunner(context);
    const workflowRunner = new WorkflowRunner(context);
    this.worker = new Worker<TaskJobData>(
      TASK_QUEUE_NAME,
      async (job, token) => {
        const kind = job.name === 'workflow' ? 'workflow' : 'task';
        const started = performance.now();
        let outcome = 'error';
        try {
          // One span per run of a job, in the trace of the call that submitted it.
          outcome = await inSpan(
            `job ${kind}`,
            {
              kind: SpanKind.CONSUMER,
              parent: job.data.traceparent,
              attributes: {
                'messaging.system': 'bullmq',
                'openclaw.task_id': job.data.taskId,
                'openclaw.worker': this.id,
                'openclaw.job.attempts_made': job.attemptsMade,
              },
            },
            () => (kind === 'workflow' ? workflowRunner.run(job, token) : taskRunner.run(job, token)),
          );
          return outcome;
        } catch (error) {
          outcome = error instanceof DelayedError ? 'parked' : error instanceof UnrecoverableError ? 'failed' : 'retry';
          throw error;
        } finally {
          this.metrics.observeJob(kind, outcome, (performance.now() - started) / 1000);
        }
      },
      {
        connection: this.workerConnection,
        prefix: this.keys.queuePrefix(),
        name: this.id,
        concurrency: this.config.concurrency,
        lockDuration: this.config.lockMs,
        // Checked more often than the lock lasts: a dead worker's job is taken over at most 5 s after
        // its lock expires (a live worker renews its locks every lockMs / 2, so it is never taken).
        stalledInterval: Math.min(this.config.lockMs, TIMINGS.workerStalledCheckMaxMs),
        maxStalledCount: this.config.maxStalls,
        removeOnComplete: { count: 0 },
      },
    );
    this.worker.on('error', (error: Error) => this.logger.warn({ err: error.message }, 'worker queue error'));
    this.worker.on('failed', (job, error) => void this.recordFailure(job, error));
    await this.worker.waitUntilReady();
    await this.heartbeat();
    this.heartbeatTimer = setInterval(() => void this.heartbeat().catch(() => undefined), TIMINGS.workerHeartbeatMs);
    this.heartbeatTimer.unref();
    this.http = await startWorkerHttp({
      host: this.config.workerHost,
      port: this.config.workerPort,
      metrics: this.metrics,
      metricsToken: this.config.metricsToken,
      readiness: () => this.readiness(),
    });
    this.logger.info({ concurrency: this.config.concurrency, port: this.http.port }, 'worker ready');
  }

  /**
   * A job BullMQ failed without the runner recording it (too many stalls: its workers kept dying):
   * the ledger must say so too, or its submitter would wait forever.
   */
  private async recordFailure(job: Job<TaskJobData> | undefined, error: Error): Promise<void> {
    if (!job) return;
    // BullMQ reports every failed attempt; only a job that is now in the failed set is over.
    if ((await job.getState().catch(() => 'unknown')) !== 'failed') return;
    // Redis may be coming back (its command connection reconnects apart from BullMQ's): keep trying.
    const task = await whileUnavailable(() => this.tasks.ledger.get(job.data.taskId), 20).catch(() => undefined);
    if (!task || isTerminal(task.status)) return;
    const wire = new GatewayError('AGENT_UNAVAILABLE', `the task could not be run: ${error.message}`, {
      retryable: false,
    }).toWire();
    const recorded = await whileUnavailable(
      () =>
        this.tasks.ledger.transition(task, {
          status: 'failed',
          fields: { error: JSON.stringify(wire), endedAt: String(Date.now()) },
          event: { error: wire },
        }),
      20,
    ).catch((e: unknown) => e as Error);
    if (recorded instanceof Error) {
      this.logger.error({ err: recorded.message, taskId: task.taskId }, 'could not record a failed task');
    }
    if (task.parentId !== undefined) await this.queue.wake(task.parentId);
  }

  private async heartbeat(): Promise<void> {
    if (this.redis.status !== 'ready') return;
    const ttl = TIMINGS.workerHeartbeatMs * 3;
    const status = this.status();
    await this.redis
      .multi()
      .zadd(this.keys.workers(), Date.now() + ttl, this.id)
      .zremrangebyscore(this.keys.workers(), '-inf', Date.now())
      .hset(this.keys.worker(this.id), {
        workerId: status.workerId,
        host: status.host,
        pid: String(status.pid),
        startedAt: String(status.startedAt),
        concurrency: String(status.concurrency),
        active: String(status.active),
        draining: String(status.draining),
        // Async attempts pass governance here: the cluster view sums these with the replicas'.
        validators: JSON.stringify(this.governance.stats()),
      })
      .pexpire(this.keys.worker(this.id), ttl)
      .exec();
  }

  private async shutdown(): Promise<void> {
    this.draining = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    // One more beat, so `worker list` and the cluster view show it draining.
    await this.heartbeat().catch(() => undefined);
    if (this.worker) {
      const closed = this.worker.close();
      const finished = await Promise.race([
        closed.then(() => true),
        delay(this.config.workerDrainMs).then(() => false),
      ]);
      if (!finished) {
        this.handingBack = true;
        const running = this.dispatcher.inFlight;
        this.logger.info({ running }, 'drain deadline passed; handing running tasks back to the queue');
        // Closed first: an attempt still in admission (a slow validator, an approval wait) is refused
        // and handed back too, instead of reaching its agent after the hand-back.
        this.dispatcher.close();
        this.dispatcher.failAllWith(new GatewayError('UNAVAILABLE', 'the worker is shutting down'));
        const handedBack = await Promise.race([
          closed.then(() => true),
          delay(TIMINGS.workerHandbackMs).then(() => false),
        ]);
        // Whatever still runs is cut off: its lock lapses and another worker takes the job as stalled.
        if (!handedBack) await this.worker.close(true).catch(() => undefined);
      }
    }
    await this.redis
      .multi()
      .zrem(this.keys.workers(), this.id)
      .del(this.keys.worker(this.id))
      .exec()
      .catch(() => undefined);
    if (this.http) {
      const server = this.http.server;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Scrapers keep connections open: end them, or close would wait for them.
        server.closeAllConnections();
      });
    }
    await this.node.close([this.workerConnection]);
    this.logger.info('worker stopped');
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
