import { createLogger, loadGatewayConfig, redactRedisUrl, runService } from '@openclaw/core';
import { Gateway } from './gateway';
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
export function runGateway(options: RunGatewayOptions = {}): Promise<void> {
  return runService({
    name: 'gateway',
    load: () => loadGatewayConfig({ env: options.env ?? process.env, flags: options.flags ?? {} }),
    logger: (config) =>
      createLogger({ level: config.logLevel, format: config.logFormat, base: { replicaId: config.replicaId } }),
    start: (config, logger) => Gateway.start(config, { logger }),
    ready: (gateway, config, logger) =>
      logger.info(
        {
          port: gateway.port,
          host: config.host,
          version: GATEWAY_VERSION,
          auth: config.auth,
          redis: redactRedisUrl(config.redisUrl),
        },
        'gateway ready',
      ),
    stopping: () => ({ message: 'stopping: draining connections' }),
    stopped: 'gateway stopped',
  });
}
