import { WORKER_SETTINGS } from '@openclaw/core';
import { runWorker } from '@openclaw/worker';
import type { Command } from 'commander';
import { fetchJson, type RemoteDefaults, type RemoteOptions, withRemoteOptions } from '../http-client';
import { addSettingOptions } from '../setting-options';
import { formatDuration, renderTable } from '../table';

/** `openclaw worker start | list`. */
export function addWorkerCommands(program: Command, defaults: RemoteDefaults): void {
  const worker = program.command('worker').description('run and list the workers that run async tasks and workflows');

  const start = worker
    .command('start')
    .description(
      'run a worker in the foreground (drains on Ctrl-C / SIGTERM); every setting is also an environment variable (docs/configuration.md)',
    );
  const flagsOf = addSettingOptions(start, WORKER_SETTINGS);
  start.action(async (options: Record<string, unknown>) => {
    await runWorker({ flags: flagsOf(options), env: process.env });
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
