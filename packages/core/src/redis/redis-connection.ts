import Redis, { type RedisOptions } from 'ioredis';
import { redisTarget } from '../config/redis-url';
import type { Logger } from '../telemetry/logger';

/**
 * What a connection is for. It decides how commands behave while Redis is away:
 * - `command`: request path. No offline queue, so calls fail fast with UNAVAILABLE instead of
 *   piling up while Redis is down; and no retry: a command whose connection dropped before its reply
 *   fails rather than being sent again, since Redis may have run it (the registry's pick script hands
 *   a task to an agent in the same round trip, and a sync call runs at most once).
 * - `subscriber`: the one subscribe-mode connection of a process. Keeps its offline queue so
 *   (re)subscriptions issued during an outage go out as soon as it reconnects.
 */
export type RedisRole = 'command' | 'subscriber';

/** Options of {@link createRedisConnection}. */
export interface RedisConnectionOptions {
  url: string;
  role: RedisRole;
  /** Connection name shown by `CLIENT LIST`. */
  name: string;
  logger: Logger;
}

/**
 * Creates an ioredis client for one role, with an `'error'` listener (an unhandled error event
 * would kill the process on a Redis blip) and a reconnect strategy that never gives up.
 * The client connects lazily: call `connect()`.
 */
export function createRedisConnection(options: RedisConnectionOptions): Redis {
  const common: RedisOptions = {
    lazyConnect: true,
    connectionName: options.name,
    connectTimeout: 2000,
    enableReadyCheck: true,
    // Reconnect forever, backing off to 1 s: a gateway must come back when Redis does.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 1000),
  };
  const roleOptions: RedisOptions =
    options.role === 'command'
      ? {
          enableOfflineQueue: false,
          maxRetriesPerRequest: 0,
          autoResubscribe: false,
          // Auto-pipelining: commands issued in the same tick go out in one write (many calls in flight).
          enableAutoPipelining: true,
          // Except publishes: the bus already sends one per inbox per turn, and a pipeline of one
          // command costs more than the command (at one call in flight, every publish is alone).
          autoPipeliningIgnoredCommands: ['publish'],
        }
      : { enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true };
  const target = redisTarget(options.url);
  const client =
    target.kind === 'url'
      ? new Redis(options.url, { ...common, ...roleOptions })
      : new Redis({ ...target.options, ...common, ...roleOptions });
  let lastError = '';
  client.on('error', (error: Error) => {
    // One line per distinct error, not one per reconnect attempt.
    if (error.message !== lastError) {
      lastError = error.message;
      options.logger.warn({ redis: options.name, err: error.message }, 'redis connection error');
    }
  });
  client.on('ready', () => {
    if (lastError !== '') options.logger.info({ redis: options.name }, 'redis connection ready again');
    lastError = '';
  });
  return client;
}

/** Whether a client can take commands right now. */
export function isRedisReady(client: Redis): boolean {
  return client.status === 'ready';
}

/**
 * Starts connecting a client (if it is not already; ioredis keeps retrying) and resolves once it is
 * ready. @throws {Error} naming the URL (without credentials) if it is not ready within `timeoutMs`.
 */
export async function connectRedis(client: Redis, url: string, timeoutMs: number): Promise<void> {
  // The last connection error, so that the start-up failure says why (a refused connection, a
  // certificate the process does not trust, a wrong password) and not only that time ran out.
  let lastError: string | undefined;
  const onError = (error: Error): void => {
    lastError = error.message;
  };
  client.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const cause = lastError === undefined ? '' : ` (last error: ${lastError})`;
      reject(new Error(`cannot reach Redis at ${redactRedisUrl(url)} within ${timeoutMs / 1000} s${cause}`));
    }, timeoutMs);
  });
  const ready = new Promise<void>((resolve) => {
    if (client.status === 'ready') return resolve();
    client.once('ready', () => resolve());
  });
  if (client.status === 'wait') client.connect().catch(() => undefined);
  try {
    await Promise.race([ready, timeout]);
  } finally {
    clearTimeout(timer);
    client.off('error', onError);
  }
}

/**
 * A Redis URL (any scheme this file reads, Sentinel sets included) with its password masked, for
 * logs and errors: `redis://app:***@host:6379`.
 */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, (_, credentials: string) => {
    const colon = credentials.indexOf(':');
    return colon === -1 ? '//***@' : `//${credentials.slice(0, colon)}:***@`;
  });
}
