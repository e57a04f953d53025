import { ConfigError } from '../config/gateway-config';
import type { Logger } from '../telemetry/logger';
import { stopTracing } from '../telemetry/tracing';

/** A long-running part of the cluster (a gateway replica, a worker) as the main thing of a process. */
export interface ServiceSpec<C, S extends { close(): Promise<void> }> {
  /** `gateway` or `worker`: names the process in messages (`openclaw gateway: ...`, `gateway failed to start`). */
  name: string;
  /** Parses the configuration. @throws {ConfigError} naming every bad setting. */
  load(): C;
  logger(config: C): Logger;
  start(config: C, logger: Logger): Promise<S>;
  /** Logs the one ready line. */
  ready?(service: S, config: C, logger: Logger): void;
  /** The log line when a signal starts the stop, and its fields. */
  stopping(config: C): { message: string; fields?: Record<string, unknown> };
  /** The log line once stopped, if the service does not log one itself. */
  stopped?: string;
}

/**
 * Runs a service until SIGINT or SIGTERM: a bad setting exits 2 with a message naming it; a failed
 * start exits 1; a signal stops it cleanly (a second one exits at once).
 * @returns a promise that resolves once the service has stopped.
 */
export async function runService<C, S extends { close(): Promise<void> }>(spec: ServiceSpec<C, S>): Promise<void> {
  let config: C;
  try {
    config = spec.load();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`openclaw ${spec.name}: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  const logger = spec.logger(config);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));
  // The signal handlers come first: a service may log that it is ready before `start` returns, and
  // a SIGTERM sent on that line must stop it cleanly, not kill it.
  let signaled: NodeJS.Signals | undefined;
  let onSignal: (signal: NodeJS.Signals) => void = (signal) => {
    signaled = signal;
  };
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    onSignal(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  let service: S;
  try {
    service = await spec.start(config, logger);
  } catch (error) {
    logger.fatal({ err: (error as Error).message }, `${spec.name} failed to start`);
    process.exitCode = 1;
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
    return;
  }
  spec.ready?.(service, config, logger);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      stopping = true;
      const line = spec.stopping(config);
      logger.info({ signal, ...line.fields }, line.message);
      service.close().then(
        () => {
          if (spec.stopped) logger.info(spec.stopped);
          resolve();
        },
        (error: unknown) => {
          logger.error({ err: error }, 'error while stopping');
          process.exitCode = 1;
          resolve();
        },
      );
    };
    onSignal = stop;
    if (signaled !== undefined) stop(signaled);
  });
  process.off('SIGINT', handler);
  process.off('SIGTERM', handler);
  // Spans still buffered are sent before the process ends.
  await stopTracing();
}
