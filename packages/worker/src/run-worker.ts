import { ConfigError, createLogger, loadWorkerConfig } from '@openclaw/core';
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
export async function runWorker(options: RunWorkerOptions = {}): Promise<void> {
  let config: ReturnType<typeof loadWorkerConfig>;
  try {
    config = loadWorkerConfig({ env: options.env ?? process.env, flags: options.flags ?? {} });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`openclaw worker: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  const logger = createLogger({ level: config.logLevel, base: { workerId: config.workerId } });
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));
  let worker: TaskWorker;
  try {
    worker = await TaskWorker.start(config, { logger });
  } catch (error) {
    logger.fatal({ err: (error as Error).message }, 'worker failed to start');
    process.exitCode = 1;
    return;
  }
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal, drainMs: config.workerDrainMs }, 'stopping: draining running tasks');
      worker.close().then(resolve, (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        process.exitCode = 1;
        resolve();
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
