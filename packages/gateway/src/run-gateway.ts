import { ConfigError, createLogger, loadGatewayConfig } from '@openclaw/core';
import { Gateway, redactUrl } from './gateway';
import { GATEWAY_VERSION } from './version';

/** Options of {@link runGateway}. */
export interface RunGatewayOptions {
  /** Command-line flags (without dashes), overriding the environment. */
  flags?: Record<string, string | undefined>;
  env?: Record<string, string | undefined>;
}

/**
 * Runs a gateway replica as the main thing of this process: parses config (exits 2 with a message
 * naming the bad setting), starts, logs one `gateway ready` line, and stops cleanly on SIGINT or
 * SIGTERM (a second signal exits at once).
 * @returns a promise that resolves once the gateway has stopped.
 */
export async function runGateway(options: RunGatewayOptions = {}): Promise<void> {
  let config: ReturnType<typeof loadGatewayConfig>;
  try {
    config = loadGatewayConfig({ env: options.env ?? process.env, flags: options.flags ?? {} });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`openclaw gateway: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  const logger = createLogger({ level: config.logLevel, base: { replicaId: config.replicaId } });
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, { logger });
  } catch (error) {
    logger.fatal({ err: (error as Error).message }, 'gateway failed to start');
    process.exitCode = 1;
    return;
  }
  logger.info(
    {
      port: gateway.port,
      host: config.host,
      version: GATEWAY_VERSION,
      auth: config.auth,
      redis: redactUrl(config.redisUrl),
    },
    'gateway ready',
  );
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'stopping: draining connections');
      gateway.close().then(
        () => {
          logger.info('gateway stopped');
          resolve();
        },
        (error: unknown) => {
          logger.error({ err: error }, 'error while stopping');
          process.exitCode = 1;
          resolve();
        },
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
