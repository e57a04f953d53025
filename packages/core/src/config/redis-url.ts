import type { ClusterOptions, RedisOptions } from 'ioredis';

/** A Redis Cluster's seed nodes and how to talk to every node. */
export interface RedisClusterTarget {
  kind: 'cluster';
  /** The nodes to discover the cluster from; the rest are found through `CLUSTER SLOTS`. */
  nodes: { host: string; port: number }[];
  /** What every node connection uses (credentials, TLS). */
  redisOptions: RedisOptions;
}

/**
 * Where the connections go: a `redis://` / `rediss://` URL as ioredis reads it, a Sentinel set, or
 * a Redis Cluster.
 */
export type RedisTarget = { kind: 'url' } | { kind: 'sentinel'; options: RedisOptions } | RedisClusterTarget;

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/?$/;

/** Options of a Redis Cluster client that do not depend on the URL. */
export const CLUSTER_OPTIONS: Partial<ClusterOptions> = {
  // Slots move (resharding, failover): follow MOVED/ASK and refresh the slot map, but never give up.
  clusterRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), 1000),
  slotsRefreshTimeout: 2000,
  // A failover takes `cluster-node-timeout` plus an election: a command redirected to a node that is
  // down waits this long for the cluster to settle, a few times, before it fails.
  retryDelayOnClusterDown: 200,
  retryDelayOnFailover: 200,
  retryDelayOnTryAgain: 100,
};

const SENTINEL_URL =
  /^(rediss?)\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/([^/?#]+)(?:\/(\d+))?(?:\?([^#]*))?$/;

/**
 * Reads a Redis URL. Besides `redis://` and `rediss://` (TLS), a Sentinel-managed Redis:
 * `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master name>[/<db>]` (sentinels
 * on 26379 unless a port is given); `rediss+sentinel://` speaks TLS to the sentinels and to Redis.
 * Query parameters `sentinelUsername` and `sentinelPassword` authenticate to the sentinels.
 * Connections then follow the master through failovers.
 * @throws {Error} naming what is wrong with the URL.
 */
export function redisTarget(url: string): RedisTarget {
  if (/^rediss?\+cluster:/.test(url)) return clusterTarget(url);
  if (/^rediss?:\/\//.test(url)) {
    if (!/^rediss?:\/\/.+/.test(url) || !URL.canParse(url))
      throw new Error('expected a valid redis:// or rediss:// URL');
    return { kind: 'url' };
  }
  const m = SENTINEL_URL.exec(url);
  if (!m) {
    throw new Error(
      'expected redis://, rediss://, redis+cluster://[[user]:password@]host[:port][,host[:port]...], or redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master name>[/<db>]',
    );
  }
  const [, scheme, user, password, hosts = '', name = '', db, query] = m;
  const sentinels = hostList(hosts, 26379, 'sentinel');
  const params = new URLSearchParams(query ?? '');
  for (const key of params.keys()) {
    if (key !== 'sentinelUsername' && key !== 'sentinelPassword') {
      throw new Error(`unknown parameter '${key}' (expected sentinelUsername or sentinelPassword)`);
    }
  }
  const tls = scheme === 'rediss';
  const options: RedisOptions = {
    sentinels,
    name: decodeURIComponent(name),
    ...(decode(user) === undefined ? {} : { username: decode(user) }),
    ...(decode(password) === undefined ? {} : { password: decode(password) }),
    ...(params.get('sentinelUsername') ? { sentinelUsername: params.get('sentinelUsername')! } : {}),
    ...(params.get('sentinelPassword') ? { sentinelPassword: params.get('sentinelPassword')! } : {}),
    ...(db === undefined ? {} : { db: Number(db) }),
    ...(tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
    // Hears +switch-master from the sentinels, rather than waiting for the old master to fail.
    failoverDetector: true,
  };
  return { kind: 'sentinel', options };
}

/**
 * `redis+cluster://[[user]:password@]host[:port][,host[:port]...]` (nodes on 6379 unless a port is
 * given): any of the cluster's nodes, from which the client learns the rest. `rediss+cluster://`
 * speaks TLS to every node. A cluster has one database: no `/<db>`.
 */
function clusterTarget(url: string): RedisClusterTarget {
  const m = CLUSTER_URL.exec(url);
  if (!m) throw new Error('expected redis+cluster://[[user]:password@]host[:port][,host[:port]...] (no database)');
  const [, scheme, user, password, hosts = ''] = m;
  return {
    kind: 'cluster',
    nodes: hostList(hosts, 6379, 'cluster node'),
    redisOptions: {
      ...(decode(user) === undefined ? {} : { username: decode(user) }),
      ...(decode(password) === undefined ? {} : { password: decode(password) }),
      ...(scheme === 'rediss' ? { tls: {} } : {}),
    },
  };
}

/** `host[:port],...` as a list; IPv6 hosts in brackets. @throws naming the entry that is not one. */
function hostList(hosts: string, defaultPort: number, what: string): { host: string; port: number }[] {
  return hosts.split(',').map((entry) => {
    const hostPort = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(entry.trim());
    const port = Number(hostPort?.[2] ?? defaultPort);
    if (!hostPort || port < 1 || port > 65535) throw new Error(`'${entry}' is not a ${what} host[:port]`);
    return { host: hostPort[1]!.replace(/^\[|\]$/g, ''), port };
  });
}

function decode(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : decodeURIComponent(v);
}
