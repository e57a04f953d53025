import { runWorker } from '@openclaw/worker';
import type { Command } from 'commander';
import { fetchJson, type RemoteDefaults, type RemoteOptions, withRemoteOptions } from '../http-client';
import { formatDuration, renderTable } from '../table';

/** Flags of `worker start`, mapped to setting flags of the worker's config table. */
const START_FLAGS = ['redis', 'worker-id', 'concurrency', 'port'] as const;

/** `openclaw worker start | list`. */
export function addWorkerCommands(program: Command, defaults: RemoteDefaults): void {
  const worker = program.command('worker').description('run and list the workers that run async tasks and workflows');

  worker
    .command('start')
    .description('run a worker in the foreground (drains on Ctrl-C / SIGTERM)')
    .option('--redis <url>', 'Redis URL [REDIS_URL, default redis://127.0.0.1:6379]')
    .option('--worker-id <id>', 'worker id [OPENCLAW_WORKER_ID, default random]')
    .option('--concurrency <n>', 'jobs run at once [OPENCLAW_WORKER_CONCURRENCY, default 32]')
    .option('--port <n>', 'port of /metrics, /healthz, /readyz [OPENCLAW_WORKER_PORT, default 18790; 0: any free port]')
    .action(async (options: Record<string, string | undefined>) => {
      const flags: Record<string, string | undefined> = {};
      for (const flag of START_FLAGS) flags[flag] = options[flag.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())];
      await runWorker({ flags, env: process.env });
    });

  withRemoteOptions(worker.command('list'), defaults)
    .description("list the live workers of the cluster (cluster:read in tenant 'default')")
    .action(async (options: RemoteOptions & { json?: boolean }) => {
      const workers = (await fetchJson(options, '/v1/workers')) as Record<string, string>[];
      if (options.json) return void process.stdout.write(`${JSON.stringify(workers, null, 2)}\n`);
      if (workers.length === 0) return void process.stdout.write('no live workers\n');
      process.stdout.write(
        `${renderTable(
          ['worker', 'host', 'pid', 'uptime', 'concurrency', 'running', 'draining'],
          workers.map((w) => [
            w.workerId ?? '',
            w.host ?? '',
            w.pid ?? '',
            formatDuration(Date.now() - Number(w.startedAt)),
            w.concurrency ?? '',
            w.active ?? '',
            w.draining ?? '',
          ]),
        )}\n`,
      );
    });
}
