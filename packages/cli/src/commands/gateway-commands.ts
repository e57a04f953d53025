import { GATEWAY_SETTINGS } from '@openclaw/core';
import type { RedisHealth, ReplicaReport } from '@openclaw/gateway';
import { runGateway } from '@openclaw/gateway';
import type { AgentInfo } from '@openclaw/protocol';
import type { Command } from 'commander';
import { fetchJson, type RemoteDefaults, type RemoteOptions, withRemoteOptions } from '../http-client';
import { addSettingOptions } from '../setting-options';
import { formatDuration, renderTable } from '../table';

/** `openclaw gateway start | status | metrics`. */
export function addGatewayCommands(program: Command, defaults: RemoteDefaults): void {
  const gateway = program.command('gateway').description('run and inspect gateway replicas');

  const start = gateway
    .command('start')
    .description(
      'run a gateway replica in the foreground (stops cleanly on Ctrl-C / SIGTERM); every setting is also an environment variable (docs/configuration.md)',
    );
  const flagsOf = addSettingOptions(start, GATEWAY_SETTINGS);
  start.action(async (options: Record<string, unknown>) => {
    await runGateway({ flags: flagsOf(options), env: process.env });
  });

  withRemoteOptions(gateway.command('status'), defaults)
    .description('show the whole cluster: replicas, workers, agents, queue and Redis (asks any one replica)')
    .action(async (options: RemoteOptions & { json?: boolean }) => {
      const c = (await fetchJson(options, '/v1/cluster')) as ClusterStatus;
      if (options.json) return print(JSON.stringify(c, null, 2));
      if (c.scope === 'tenant') return print(tenantStatusText(c));
      const ready = c.replicas.filter((r) => r.ready).length;
      const redis = c.redis.reachable
        ? `redis ${c.redis.version}${c.redis.masters === undefined ? '' : ` cluster of ${c.redis.masters} masters`} up ${formatDuration((c.redis.uptimeSeconds ?? 0) * 1000)}, ${formatBytes(c.redis.usedMemoryBytes ?? 0)}, ${c.redis.connectedClients} clients, aof ${c.redis.aofEnabled ? 'on' : 'off'}, ${c.redis.maxmemoryPolicy}`
        : 'redis unreachable';
      const lines = [
        `cluster: ${c.replicas.length} replica(s), ${ready} ready; ${c.workers.length} worker(s); ${redis}`,
        '',
        c.replicas.length === 0
          ? 'no replica has reported in the last 6 s'
          : renderTable(
              ['replica', 'version', 'ready', 'age', 'agents', 'clients', 'in flight', 'host'],
              c.replicas.map((r) => [
                r.replicaId,
                r.version,
                r.draining ? 'draining' : r.ready ? 'yes' : 'no',
                formatDuration(c.at - r.startedAt),
                r.connections.agent,
                r.connections.client,
                r.inFlight,
                `${r.host}:${r.port}`,
              ]),
            ),
        '',
        c.workers.length === 0
          ? 'no live workers'
          : renderTable(
              ['worker', 'active', 'concurrency', 'age', 'draining'],
              c.workers.map((w) => [
                w.workerId ?? '-',
                w.active ?? '-',
                w.concurrency ?? '-',
                formatDuration(c.at - Number(w.startedAt)),
                w.draining === 'true' ? 'yes' : 'no',
              ]),
            ),
        '',
        agentsText(c),
        '',
        c.queue ? `queue: ${queueText(c.queue)}` : 'queue: unknown (Redis unreachable)',
      ];
      print(lines.join('\n'));
    });

  withRemoteOptions(gateway.command('metrics'), defaults)
    .description('summarise the whole cluster over an interval: request and error rates, latency, queue depths')
    .option('--interval <seconds>', 'how long to measure the rates over', '2')
    .action(async (options: RemoteOptions & { json?: boolean; interval: string }) => {
      const seconds = Number(options.interval);
      if (!Number.isFinite(seconds) || seconds < 0.5 || seconds > 300) {
        throw new Error('--interval: expected a number of seconds from 0.5 to 300');
      }
      const first = (await fetchJson(options, '/v1/cluster/metrics')) as ClusterMetrics;
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      const second = (await fetchJson(options, '/v1/cluster/metrics')) as ClusterMetrics;
      const summary = summarise(first, second);
      if (options.json) return print(JSON.stringify(summary, null, 2));
      const t = summary.total;
      const rows = summary.replicas.map((r) => [
        r.replicaId,
        r.requestsPerSecond,
        r.errorsPerSecond,
        r.coordinatorLatencyMs.p50,
        r.coordinatorLatencyMs.p99,
        r.coordinatorLatencyMs.count,
        r.inFlight,
        r.connections.agent + r.connections.client,
      ]);
      rows.push([
        'total',
        t.requestsPerSecond,
        t.errorsPerSecond,
        '',
        t.coordinatorP99Ms,
        t.coordinatorCalls,
        t.inFlight,
        t.connections,
      ]);
      const errors: (string | number)[][] = [];
      for (const [action, outcomes] of Object.entries(t.requests).sort()) {
        for (const [outcome, count] of Object.entries(outcomes).sort()) {
          if (outcome !== 'ok') errors.push([action, outcome, count]);
        }
      }
      print(
        [
          `cluster over ${summary.intervalMs / 1000} s: ${t.requestsPerSecond} req/s, ${t.errorsPerSecond} errors/s; queue: ${summary.queue ? queueText(summary.queue) : 'unknown'}`,
          '',
          renderTable(['replica', 'req/s', 'errors/s', 'p50 ms', 'p99 ms', 'calls', 'in flight', 'connections'], rows),
          '',
          errors.length === 0
            ? 'no errors since the replicas started'
            : renderTable(['action', 'error', 'count since start'], errors),
        ].join('\n'),
      );
    });
}

/**
 * `gateway status` for a tenant other than the operators': its agents and the replicas' health; the
 * figures that span tenants are the operators' alone.
 */
function tenantStatusText(c: ClusterStatus): string {
  const ready = c.replicas.filter((r) => r.ready).length;
  return [
    `cluster: ${c.replicas.length} replica(s), ${ready} ready; redis ${c.redis.reachable ? 'up' : 'unreachable'}`,
    "(workers, queue, traffic and Redis details span every tenant: only the operators' tenant sees them)",
    '',
    c.replicas.length === 0
      ? 'no replica has reported in the last 6 s'
      : renderTable(
          ['replica', 'version', 'ready', 'age'],
          c.replicas.map((r) => [
            r.replicaId,
            r.version,
            r.draining ? 'draining' : r.ready ? 'yes' : 'no',
            formatDuration(c.at - r.startedAt),
          ]),
        ),
    '',
    agentsText(c),
  ].join('\n');
}

/** The tenant's agents, as both views of `gateway status` show them. */
function agentsText(c: ClusterStatus): string {
  return c.agents.length === 0
    ? 'no agents'
    : renderTable(
        ['agent', 'kind', 'instances', 'tasks'],
        c.agents.map((a) => [a.name, a.kind, a.instances, a.tasks.length === 0 ? '*' : a.tasks.join(' ')]),
      );
}

/** `GET /v1/cluster`. */
interface ClusterStatus {
  at: number;
  /** `tenant`: the view of a tenant other than the operators' (replicas' health only). */
  scope?: 'cluster' | 'tenant';
  replicas: Omit<ReplicaReport, 'requests' | 'coordinatorLatencyMs'>[];
  workers: Record<string, string>[];
  agents: AgentInfo[];
  queue: Record<string, number> | null;
  redis: RedisHealth;
}

/** `GET /v1/cluster/metrics`. */
interface ClusterMetrics {
  at: number;
  replicas: ReplicaReport[];
  queue: Record<string, number> | null;
}

/** Rates between two samples of the cluster's counters, per replica and in total. */
function summarise(first: ClusterMetrics, second: ClusterMetrics) {
  const intervalMs = second.at - first.at;
  const perSecond = (n: number) => Math.round((n * 1000 * 100) / Math.max(intervalMs, 1)) / 100;
  const count = (requests: Record<string, Record<string, number>>, errorsOnly: boolean) => {
    let n = 0;
    for (const outcomes of Object.values(requests)) {
      for (const [outcome, c] of Object.entries(outcomes)) if (!errorsOnly || outcome !== 'ok') n += c;
    }
    return n;
  };
  const replicas = second.replicas.map((r) => {
    const before = first.replicas.find((p) => p.replicaId === r.replicaId)?.requests ?? {};
    return {
      replicaId: r.replicaId,
      requestsPerSecond: perSecond(count(r.requests, false) - count(before, false)),
      errorsPerSecond: perSecond(count(r.requests, true) - count(before, true)),
      coordinatorLatencyMs: r.coordinatorLatencyMs,
      inFlight: r.inFlight,
      connections: r.connections,
      requests: r.requests,
    };
  });
  const requests: Record<string, Record<string, number>> = {};
  for (const r of second.replicas) {
    for (const [action, outcomes] of Object.entries(r.requests)) {
      const into = requests[action] ?? {};
      requests[action] = into;
      for (const [outcome, c] of Object.entries(outcomes)) into[outcome] = (into[outcome] ?? 0) + c;
    }
  }
  const sum = (pick: (r: (typeof replicas)[number]) => number) =>
    Math.round(replicas.reduce((total, r) => total + pick(r), 0) * 100) / 100;
  return {
    intervalMs,
    replicas,
    total: {
      requestsPerSecond: sum((r) => r.requestsPerSecond),
      errorsPerSecond: sum((r) => r.errorsPerSecond),
      // The worst replica's p99: percentiles of different replicas cannot be added up.
      coordinatorP99Ms: Math.max(0, ...replicas.map((r) => r.coordinatorLatencyMs.p99)),
      coordinatorCalls: sum((r) => r.coordinatorLatencyMs.count),
      inFlight: sum((r) => r.inFlight),
      connections: sum((r) => r.connections.agent + r.connections.client),
      requests,
    },
    queue: second.queue,
  };
}

function queueText(q: Record<string, number>): string {
  return ['waiting', 'active', 'delayed', 'failed'].map((state) => `${state} ${q[state] ?? 0}`).join(', ');
}

function formatBytes(n: number): string {
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KiB`;
  return `${Math.round((n / 1024 / 1024) * 10) / 10} MiB`;
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}
