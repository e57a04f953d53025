import { createLogger, loadWorkerConfig, runService } from '@openclaw/core';
import { TaskWorker } from './task-worker';

/** Options of {@link runWorker}. */
export interface RunWorkerOptions {
  /** Command-line flags (without dashes), overriding the environment. */
  flags?: Record<string, string | undefined>;
  env?: Record<string, string | undefined>;
}

/**
 * Runs a worker as the main thing of this process: parses config (exits 2 with a message naming the
 * bad setting), starts, logs one `worker ready` line, and drains on SIGINT or SIGTERM (a second
 * signal exits at once; its jobs come back to the queue when their locks expire).
 * @returns a promise that resolves once the worker has stopped.
 */
export function runWorker(options: RunWorkerOptions = {}): Promise<void> {
  return runService({
    name: 'worker',
    load: () => loadWorkerConfig({ env: options.env ?? process.env, flags: options.flags ?? {} }),
    logger: (config) =>
      createLogger({ level: config.logLevel, format: config.logFormat, base: { workerId: config.workerId } }),
    start: (config, logger) => TaskWorker.start(config, { logger }),
    stopping: (config) => ({ message: 'stopping: draining running tasks', fields: { drainMs: config.workerDrainMs } }),
  });
}
