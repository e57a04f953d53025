import type { GatewayStatus, MetricsSnapshot, Readiness } from '@openclaw/gateway';
import { runGateway } from '@openclaw/gateway';
import type { Command } from 'commander';
import { fetchJson, type RemoteDefaults, type RemoteOptions, withRemoteOptions } from '../http-client';
import { formatDuration, renderTable } from '../table';

/** Flags of `gateway start`, mapped to setting flags of the config table. */
const START_FLAGS = ['port', 'host', 'redis', 'replica-id', 'auth', 'api-keys'] as const;

/** `openclaw gateway start | status | metrics`. */
export function addGatewayCommands(program: Command, defaults: RemoteDefaults): void {
  const gateway = program.command('gateway').description('run and inspect gateway replicas');

  gateway
    .command('start')
    .description('run a gateway replica in the foreground (stops cleanly on Ctrl-C / SIGTERM)')
    .option('--port <port>', 'port for HTTP and WebSocket [OPENCLAW_PORT, default 18789]')
    .option('--host <host>', 'address to listen on [OPENCLAW_HOST, default 127.0.0.1]')
    .option('--redis <url>', 'Redis URL [REDIS_URL, default redis://127.0.0.1:6379]')
    .option('--replica-id <id>', 'replica id [OPENCLAW_REPLICA_ID, default random]')
    .option('--auth <mode>', 'none | apikey [OPENCLAW_AUTH, default none]')
    .option('--api-keys <keys>', 'comma-separated static API keys [OPENCLAW_API_KEYS]')
    .action(async (options: Record<string, string | undefined>) => {
      const flags: Record<string, string | undefined> = {};
      for (const flag of START_FLAGS) flags[flag] = options[camel(flag)];
      await runGateway({ flags, env: process.env });
    });

  withRemoteOptions(gateway.command('status'), defaults)
    .description('show a running replica: readiness, connections, local agents')
    .action(async (options: RemoteOptions & { json?: boolean }) => {
      const [status, readiness] = await Promise.all([
        fetchJson(options, '/status') as Promise<GatewayStatus>,
        fetchReadiness(options),
      ]);
      if (options.json) return print(JSON.stringify({ ...status, readiness }, null, 2));
      const lines = [
        renderTable(
          ['replica', 'version', 'ready', 'uptime', 'connections', 'in flight'],
          [
            [
              status.replicaId,
              status.version,
              readyText(readiness),
              formatDuration(status.uptimeMs),
              status.connections,
              status.inFlight,
            ],
          ],
        ),
        '',
        status.agents.length === 0
          ? 'no agents attached to this replica'
          : renderTable(
              ['agent', 'instances', 'open tasks'],
              status.agents.map((a) => [a.name, a.instances, a.openTasks]),
            ),
      ];
      print(lines.join('\n'));
    });

  withRemoteOptions(gateway.command('metrics'), defaults)
    .description("show a replica's counters: connections, requests by outcome, latency percentiles")
    .action(async (options: RemoteOptions & { json?: boolean }) => {
      const m = (await fetchJson(options, '/v1/metrics')) as MetricsSnapshot;
      if (options.json) return print(JSON.stringify(m, null, 2));
      const rows: (string | number)[][] = [];
      for (const [action, outcomes] of Object.entries(m.requests).sort()) {
        for (const [outcome, count] of Object.entries(outcomes).sort()) rows.push([action, outcome, count]);
      }
      const l = m.coordinatorLatencyMs;
      print(
        [
          `replica ${m.replicaId}, up ${formatDuration(m.uptimeMs)}`,
          `connections: ${m.connections.current} open, ${m.connections.total} total, ${m.connections.rejected} rejected; ${m.inFlight} calls in flight`,
          '',
          rows.length === 0 ? 'no requests yet' : renderTable(['action', 'outcome', 'count'], rows),
          '',
          `coordinator latency (last ${Math.min(l.count, 10_000)} calls): p50 ${l.p50} ms, p90 ${l.p90} ms, p99 ${l.p99} ms, max ${l.max} ms`,
        ].join('\n'),
      );
    });
}

async function fetchReadiness(remote: RemoteOptions): Promise<Readiness | { ready: false; error: string }> {
  try {
    return (await fetchJson(remote, '/readyz')) as Readiness;
  } catch (error) {
    // 503 carries a body too, but fetchJson turns it into an error: read it plainly.
    const response = await fetch(new URL('/readyz', remote.url)).catch(() => undefined);
    if (response) return (await response.json().catch(() => ({ ready: false }))) as Readiness;
    return { ready: false, error: (error as Error).message };
  }
}

function readyText(r: Readiness | { ready: false; error: string }): string {
  if (r.ready) return 'yes';
  if ('error' in r) return 'no';
  const why = [!r.redis && 'redis down', !r.bus && 'bus down', r.draining && 'draining'].filter(Boolean).join(', ');
  return `no (${why})`;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}
