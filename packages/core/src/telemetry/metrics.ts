import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { TIMINGS } from '../config/timings';

/** Seconds: buckets for routing and call latency (0.5 ms to 30 s). */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Seconds: buckets for validator times (0.1 ms to 2 s, around the tiers' 10 ms, 100 ms and 1 s budgets). */
const VALIDATOR_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2];

/**
 * What a process's metrics are read from, each part as little as the metrics need of it (the bus,
 * the governance gate, approvals, the task queue: telemetry depends on none of them). Everything but
 * the bus and Redis is optional.
 */
export interface MetricSources {
  /** The process's Redis connections by role (`command`, `subscriber`, `queue`, ...). */
  redis: Record<string, { status: string }>;
  bus: {
    readonly stats: {
      readonly sent: ReadonlyMap<string, number>;
      readonly received: ReadonlyMap<string, number>;
      readonly publishErrors: number;
      readonly dropped: number;
    };
    healthy(): boolean;
    canaryAgeMs(): number;
  };
  audit?: { failures: number };
  governance?: {
    onVerdict(
      observer: (verdict: {
        validator: string;
        tier: number;
        decision: string;
        ms: number;
        dryRun?: boolean;
        failed?: string;
      }) => void,
    ): void;
  };
  approvals?: { pendingCounts(): Promise<Record<string, number>>; readonly waiting: number };
  queue?: { counts(): Promise<Record<string, number>> };
}

/**
 * The Prometheus metrics every process of the cluster exposes on `/metrics`: Node's own (event-loop
 * lag, memory, CPU, GC), Redis connection state, the bus (messages, publish errors, delivery
 * health), governance verdicts and timings, queue depths, pending approvals and audit write
 * failures. Counters kept elsewhere are read at scrape time; nothing here is on a hot path except the
 * verdict observation. Names follow the Prometheus conventions (`_total`, `_seconds`) and pass
 * `promtool check metrics`.
 */
export class ProcessMetrics {
  readonly registry = new Registry();

  constructor(sources: MetricSources) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry });
    // Gauges with a counter's suffix, which `promtool check metrics` rejects; the rest stay.
    for (const misnamed of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ]) {
      registry.removeSingleMetric(misnamed);
    }

    new Gauge({
      name: 'openclaw_redis_connection_up',
      help: 'Whether a Redis connection of this process is ready (1) or not (0).',
      labelNames: ['connection'],
      registers: [registry],
      collect() {
        for (const [name, connection] of Object.entries(sources.redis)) {
          this.set({ connection: name }, connection.status === 'ready' ? 1 : 0);
        }
      },
    });

    const bus = sources.bus;
    const counterFrom = (name: string, help: string, read: () => ReadonlyMap<string, number>) =>
      new Counter({
        name,
        help,
        labelNames: ['type'],
        registers: [registry],
        collect() {
          this.reset();
          for (const [type, n] of read()) this.inc({ type }, n);
        },
      });
    counterFrom(
      'openclaw_bus_messages_sent_total',
      'Messages this process published on the cluster bus, by type.',
      () => bus.stats.sent,
    );
    counterFrom(
      'openclaw_bus_messages_received_total',
      'Valid messages this process received on its bus inbox, by type (canaries included).',
      () => bus.stats.received,
    );
    total(
      registry,
      'openclaw_bus_publish_errors_total',
      'Bus publishes that failed (Redis unreachable).',
      () => bus.stats.publishErrors,
    );
    total(
      registry,
      'openclaw_bus_messages_dropped_total',
      'Inbound bus messages that were not valid.',
      () => bus.stats.dropped,
    );
    new Gauge({
      name: 'openclaw_bus_delivery_healthy',
      help: 'Whether this process both publishes and receives on the bus (its canary arrives): 1 or 0.',
      registers: [registry],
      collect() {
        this.set(bus.healthy() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'openclaw_bus_canary_age_seconds',
      help: 'Seconds since this process last received its own canary message.',
      registers: [registry],
      collect() {
        this.set(bus.canaryAgeMs() / 1000);
      },
    });

    const audit = sources.audit;
    if (audit) {
      total(
        registry,
        'openclaw_audit_write_failures_total',
        'Audit entries that could not be written.',
        () => audit.failures,
      );
    }

    if (sources.governance) {
      const verdicts = new Counter({
        name: 'openclaw_governance_verdicts_total',
        help: 'Governance verdicts, by validator, tier and verdict (allow, deny, redact, require-approval; would-* for dry runs; failed-open or failed-closed).',
        labelNames: ['validator', 'tier', 'verdict'],
        registers: [registry],
      });
      const times = new Histogram({
        name: 'openclaw_governance_validator_duration_seconds',
        help: 'Time of each validator verdict, by tier (budgets: 10 ms, 100 ms, 1 s).',
        labelNames: ['tier'],
        buckets: VALIDATOR_BUCKETS,
        registers: [registry],
      });
      sources.governance.onVerdict((v) => {
        const verdict = v.dryRun
          ? `would-${v.decision}`
          : v.failed
            ? v.decision === 'allow'
              ? 'failed-open'
              : 'failed-closed'
            : v.decision;
        verdicts.inc({ validator: v.validator, tier: String(v.tier), verdict });
        times.observe({ tier: String(v.tier) }, v.ms / 1000);
      });
    }

    const approvals = sources.approvals;
    if (approvals) {
      const pending = cached(() => approvals.pendingCounts());
      new Gauge({
        name: 'openclaw_approvals_pending',
        help: 'Approvals waiting for a decision in the whole cluster, by tenant (the same on every process).',
        labelNames: ['tenant'],
        registers: [registry],
        async collect() {
          this.reset();
          for (const [tenant, n] of Object.entries((await pending()) ?? {})) this.set({ tenant }, n);
        },
      });
      new Gauge({
        name: 'openclaw_approvals_waiting_calls',
        help: 'Sync calls on this process waiting for an approval.',
        registers: [registry],
        collect() {
          this.set(approvals.waiting);
        },
      });
    }

    const queue = sources.queue;
    if (queue) {
      const counts = cached(() => queue.counts());
      new Gauge({
        name: 'openclaw_queue_jobs',
        help: 'Jobs in the task queue, by state (the same on every process).',
        labelNames: ['state'],
        registers: [registry],
        async collect() {
          const now = await counts();
          if (!now) return;
          for (const state of ['waiting', 'active', 'delayed', 'failed', 'prioritized']) {
            this.set({ state }, now[state] ?? 0);
          }
        },
      });
    }
  }

  /** The metrics in the Prometheus text format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A counter whose total is kept elsewhere, read at scrape time. */
function total(registry: Registry, name: string, help: string, read: () => number): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/**
 * A read of Redis reused for {@link TIMINGS.clusterReadCacheMs}: scrapes of many processes do not multiply
 * the load. A failed read answers undefined (the gauge keeps its last value).
 */
function cached<T>(read: () => Promise<T>): () => Promise<T | undefined> {
  let at = 0;
  let value: T | undefined;
  return async () => {
    if (Date.now() - at < TIMINGS.clusterReadCacheMs) return value;
    try {
      value = await read();
      at = Date.now();
    } catch {
      // Redis unreachable: the connection gauge says so.
    }
    return value;
  };
}

/**
 * Answers `GET /metrics`: the Prometheus text, or 401 when a token is set and the request does not
 * carry it as `Authorization: Bearer <token>` (compared in constant time).
 */
export async function serveMetrics(
  req: IncomingMessage,
  res: ServerResponse,
  metrics: ProcessMetrics,
  token: string,
): Promise<void> {
  if (token !== '') {
    const given = Buffer.from(/^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '');
    const wanted = Buffer.from(token);
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': 'Bearer',
        'x-content-type-options': 'nosniff',
      });
      res.end(
        JSON.stringify({
          error: { code: 'UNAUTHENTICATED', message: '/metrics needs the metrics token', retryable: false },
        }),
      );
      return;
    }
  }
  const text = await metrics.render();
  res.writeHead(200, {
    'content-type': metrics.contentType,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}
