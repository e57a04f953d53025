import { GatewayProcess, type GatewayProcessOptions, type LogRecord } from './gateway-process';

/**
 * A real worker process: `node packages/cli/dist/bin.js worker start --redis <url> --worker-id <id>`.
 * Same lifecycle as {@link GatewayProcess} (start waits for `"worker ready"`; stop, kill, logs);
 * its port serves `/metrics`, `/healthz` and `/readyz`.
 */
export class WorkerProcess extends GatewayProcess {
  static override async start(options: GatewayProcessOptions): Promise<WorkerProcess> {
    const worker = new WorkerProcess({
      ...options,
      replicaId: options.replicaId ?? `wk-${Math.random().toString(16).slice(2, 10)}`,
    });
    await worker.start();
    return worker;
  }

  protected override commandArgs(): string[] {
    // Port 0: many workers on one machine; the ready line says which port each got.
    return ['worker', 'start', '--redis', this.options.redisUrl, '--worker-id', this.replicaId, '--port', '0'];
  }

  protected override readyPortOf(record: LogRecord): number | undefined {
    return record.msg === 'worker ready' ? (record.port as number) : undefined;
  }
}
