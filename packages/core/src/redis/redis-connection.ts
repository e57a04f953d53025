import Redis, { Cluster, type RedisOptions } from 'ioredis';
import { CLUSTER_OPTIONS, type RedisClusterTarget, redisTarget } from '../config/redis-url';
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

/** A connection to one Redis (alone or behind Sentinel) or to a Redis Cluster (`redis+cluster://`). */
export type RedisClient = Redis | Cluster;

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
export function createRedisConnection(options: RedisConnectionOptions): RedisClient {
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
    target.kind === 'cluster'
      ? clusterConnection(target, options.role, common, roleOptions)
      : target.kind === 'url'
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

/**
 * A Redis Cluster client for one role. Commands go to the master owning their key's slot (scripts to
 * the slot of their first key), following MOVED and ASK through resharding and failover. The
 * subscriber uses sharded pub/sub: one subscriber connection per master, each `SSUBSCRIBE` on the
 * master that owns the channel's slot, moved with the slot.
 */
function clusterConnection(
  target: RedisClusterTarget,
  role: RedisRole,
  common: RedisOptions,
  roleOptions: RedisOptions,
): Cluster {
  const {
    enableOfflineQueue,
    enableAutoPipelining,
    autoPipeliningIgnoredCommands,
    retryStrategy,
    lazyConnect,
    ...node
  } = { ...common, ...roleOptions };
  return new Cluster(target.nodes, {
    ...CLUSTER_OPTIONS,
    lazyConnect,
    enableOfflineQueue,
    enableReadyCheck: true,
    ...(enableAutoPipelining
      ? { enableAutoPipelining, autoPipeliningIgnoredCommands: [...(autoPipeliningIgnoredCommands ?? []), 'spublish'] }
      : {}),
    shardedSubscribers: role === 'subscriber',
    // A slot that moves takes its sharded subscriptions with it, silently: the subscriber learns the
    // new owner (and subscribes there) from the slot map, read every second.
    ...(role === 'subscriber' ? { slotsRefreshInterval: 1000 } : {}),
    redisOptions: { ...node, ...target.redisOptions },
  });
}

/** Whether a client is a Redis Cluster client. */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/** Whether a client can take commands right now. */
export function isRedisReady(client: RedisClient): boolean {
  return client.status === 'ready';
}

/**
 * Starts connecting a client (if it is not already; ioredis keeps retrying) and resolves once it is
 * ready. @throws {Error} naming the URL (without credentials) if it is not ready within `timeoutMs`.
 */
export async function connectRedis(client: RedisClient, url: string, timeoutMs: number): Promise<void> {
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

/**
 * Whether a connection can serve now, for readiness. One Redis (alone or behind Sentinel): its
 * connection is ready. A Redis Cluster: also, the master of every slot answered a `PING` in the last
 * probe (one every `intervalMs`). A master that dies leaves its slots unserved until its replica
 * takes over, while the cluster client's own status stays ready; the probe sees the new master once
 * the client reloads the slot map after the failover.
 */
export class RedisReadiness {
  private mastersAnswer = true;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;

  constructor(
    private readonly client: RedisClient,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    if (!isCluster(this.client) || this.timer) return;
    this.timer = setInterval(() => void this.probe(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  get ready(): boolean {
    return this.client.status === 'ready' && this.mastersAnswer;
  }

  private async probe(): Promise<void> {
    const cluster = this.client as Cluster;
    if (this.probing || cluster.status !== 'ready') return;
    this.probing = true;
    try {
      // The masters that own slots in the client's slot map: one that died is dropped from the
      // client's nodes at once, but keeps its slots in the map until the cluster promotes a replica.
      const nodes = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]));
      const owners = new Set<string>();
      for (const keys of cluster.slots) if (keys?.[0]) owners.add(keys[0]);
      const answers = await Promise.all(
        [...owners].map((key) => {
          const node = nodes.get(key);
          return node ? answersWithin(node, this.intervalMs / 2) : false;
        }),
      );
      this.mastersAnswer = owners.size > 0 && answers.every(Boolean);
    } finally {
      this.probing = false;
    }
  }
}

/** Whether one node answers a PING within `ms`. */
function answersWithin(node: Redis, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    node.ping().then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
}
