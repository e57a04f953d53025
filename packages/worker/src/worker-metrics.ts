import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LATENCY_BUCKETS, type MetricSources, ProcessMetrics, serveMetrics } from '@openclaw/core';
import { Counter, Gauge, Histogram } from 'prom-client';

/** A worker's Prometheus metrics: every process's (see {@link ProcessMetrics}), plus its jobs. */
export class WorkerMetrics extends ProcessMetrics {
  private readonly jobs: Counter;
  private readonly durations: Histogram;

  constructor(sources: MetricSources & { activeJobs(): number }) {
    super(sources);
    const registry = this.registry;
    this.jobs = new Counter({
      name: 'openclaw_jobs_total',
      help: 'Job runs of this worker, by kind (task, workflow) and outcome (completed, failed, retry, parked, canceled, ...).',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    });
    this.durations = new Histogram({
      name: 'openclaw_job_duration_seconds',
      help: 'How long one run of a job took on this worker, by kind (a parked job ends its run when it parks).',
      labelNames: ['kind'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
    new Gauge({
      name: 'openclaw_worker_active_jobs',
      help: 'Agent calls this worker is waiting on.',
      registers: [registry],
      collect() {
        this.set(sources.activeJobs());
      },
    });
  }

  /** One run of a job ended. */
  observeJob(kind: string, outcome: string, seconds: number): void {
    this.jobs.inc({ kind, outcome });
    this.durations.observe({ kind }, seconds);
  }
}

/** The worker's HTTP endpoints: `/metrics`, `/healthz` (alive), `/readyz` (Redis, bus, not draining). */
export async function startWorkerHttp(options: {
  host: string;
  port: number;
  metrics: WorkerMetrics;
  metricsToken: string;
  readiness(): { ready: boolean } & Record<string, unknown>;
}): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://worker.invalid').pathname;
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return json(405, { error: { code: 'BAD_REQUEST', message: 'only GET is served' } });
    if (path === '/healthz') return json(200, { status: 'ok' });
    if (path === '/readyz') {
      const readiness = options.readiness();
      return json(readiness.ready ? 200 : 503, readiness);
    }
    if (path === '/metrics') {
      serveMetrics(req, res, options.metrics, options.metricsToken).catch(() => {
        if (!res.headersSent) json(500, { error: { code: 'INTERNAL', message: 'internal error' } });
      });
      return;
    }
    json(404, { error: { code: 'NOT_FOUND', message: `no endpoint GET ${path}` } });
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException): void => {
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(
              `port ${options.port} on ${options.host} is in use: give each worker on this host its own OPENCLAW_WORKER_PORT (or --port 0 for any free one)`,
            )
          : error,
      );
    };
    server.once('error', failed);
    server.listen(options.port, options.host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}
