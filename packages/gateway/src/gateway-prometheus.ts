import { type CacheStats, LATENCY_BUCKETS, type MetricSources, ProcessMetrics, type RouteKind } from '@openclaw/core';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { ReplicaCounters } from './replica-counters';

/** What the replica's own metrics are read from, beyond what every process has. */
export interface GatewayMetricSources extends MetricSources {
  counters: ReplicaCounters;
  /** Live connections: how many are agents (registered at least one instance) and how many are not. */
  connectionsByRole(): { agent: number; client: number };
  inFlight(): number;
  /** Bytes queued for clients that have not read them yet: in all, and for the worst connection. */
  outboundBuffered(): { bytes: number; largest: number };
  /** The result cache's counts on this replica. */
  cache: CacheStats;
}

/**
 * A gateway replica's Prometheus metrics: every process's (see {@link ProcessMetrics}), plus
 * connections by role, requests by action and outcome, routing latency (local, cross-replica, HTTP
 * agents) and `coordinator` call latency.
 */
export class GatewayPrometheus extends ProcessMetrics {
  private readonly routing: Histogram;
  private readonly calls: Histogram;

  constructor(sources: GatewayMetricSources) {
    super(sources);
    const registry = this.registry;
    const counters = sources.counters;
    new Gauge({
      name: 'openclaw_connections',
      help: 'Open WebSocket connections, by role (agent: registered an agent instance; client: any other).',
      labelNames: ['role'],
      registers: [registry],
      collect() {
        const byRole = sources.connectionsByRole();
        this.set({ role: 'agent' }, byRole.agent);
        this.set({ role: 'client' }, byRole.client);
      },
    });
    new Gauge({
      name: 'openclaw_outbound_buffered_bytes',
      help: 'Bytes queued for WebSocket clients that have not read them yet, over all connections (each is closed with 1013 past OPENCLAW_MAX_BUFFERED_BYTES).',
      registers: [registry],
      collect() {
        this.set(sources.outboundBuffered().bytes);
      },
    });
    new Gauge({
      name: 'openclaw_outbound_buffered_bytes_max',
      help: 'Bytes queued for the connection with the most unread frames.',
      registers: [registry],
      collect() {
        this.set(sources.outboundBuffered().largest);
      },
    });
    const cache = sources.cache;
    new Counter({
      name: 'openclaw_cache_lookups_total',
      help: 'Calls to cacheable tasks, by result: hit (answered from the cache), shared (answered by an identical call in flight), miss (sent to the agent). Agent calls saved: hit plus shared.',
      labelNames: ['result'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ result: 'hit' }, cache.hits);
        this.inc({ result: 'shared' }, cache.shared);
        this.inc({ result: 'miss' }, cache.misses);
      },
    });
    new Counter({
      name: 'openclaw_cache_stored_total',
      help: 'Agent outputs stored in the result cache.',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(cache.stored);
      },
    });
    new Counter({
      name: 'openclaw_connections_accepted_total',
      help: 'WebSocket connections accepted.',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(counters.connectionsTotal);
      },
    });
    new Counter({
      name: 'openclaw_connections_rejected_total',
      help: 'WebSocket upgrades refused (credentials, origin, path, limits, draining).',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(counters.connectionsRejected);
      },
    });
    new Counter({
      name: 'openclaw_connections_closed_total',
      help: 'Connections the gateway closed, by close code (1001 drain, 1002 or 1007 malformed frames, 1006 missed pings, 1008 credentials, 1009 frame size, 1012 stopped before answering, 1013 slow consumer).',
      labelNames: ['code'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [code, n] of counters.closeCounts()) this.inc({ code }, n);
      },
    });
    new Counter({
      name: 'openclaw_requests_total',
      help: 'Requests answered, by action and outcome (ok, or the error code).',
      labelNames: ['action', 'outcome'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [action, byOutcome] of counters.requestCounts()) {
          for (const [outcome, n] of byOutcome) this.inc({ action, outcome }, n);
        }
      },
    });
    new Gauge({
      name: 'openclaw_calls_in_flight',
      help: 'Routed tasks this replica is waiting on (sync calls and their agents).',
      registers: [registry],
      collect() {
        this.set(sources.inFlight());
      },
    });
    this.routing = new Histogram({
      name: 'openclaw_routing_duration_seconds',
      help: 'From dispatch to the end of a routed task, by where its agent was: local (this replica), remote (another replica), http (an HTTP agent), region (a linked region).',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
    this.calls = new Histogram({
      name: 'openclaw_coordinator_duration_seconds',
      help: 'Sync coordinator calls as the caller sees them, from request to response (errors included).',
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
  }

  /** One routed task ended. */
  observeRouted(route: RouteKind, seconds: number): void {
    this.routing.observe({ route }, seconds);
  }

  /** One sync call was answered. */
  observeCall(seconds: number): void {
    this.calls.observe(seconds);
  }
}
