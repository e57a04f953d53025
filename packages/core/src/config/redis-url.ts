import type { RedisOptions } from 'ioredis';

/** Where the connections go: a `redis://` / `rediss://` URL as ioredis reads it, or a Sentinel set. */
export type RedisTarget = { kind: 'url' } | { kind: 'sentinel'; options: RedisOptions };

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
  if (/^rediss?:\/\//.test(url)) {
    if (!/^rediss?:\/\/.+/.test(url) || !URL.canParse(url))
      throw new Error('expected a valid redis:// or rediss:// URL');
    return { kind: 'url' };
  }
  const m = SENTINEL_URL.exec(url);
  if (!m) {
    throw new Error(
      'expected redis://, rediss://, or redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master name>[/<db>]',
    );
  }
  const [, scheme, user, password, hosts = '', name = '', db, query] = m;
  const sentinels = hosts.split(',').map((entry) => {
    const hostPort = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(entry.trim());
    const port = Number(hostPort?.[2] ?? 26379);
    if (!hostPort || port < 1 || port > 65535) throw new Error(`'${entry}' is not a sentinel host[:port]`);
    return { host: hostPort[1]!.replace(/^\[|\]$/g, ''), port };
  });
  const params = new URLSearchParams(query ?? '');
  for (const key of params.keys()) {
    if (key !== 'sentinelUsername' && key !== 'sentinelPassword') {
      throw new Error(`unknown parameter '${key}' (expected sentinelUsername or sentinelPassword)`);
    }
  }
  const decode = (v: string | undefined) => (v === undefined || v === '' ? undefined : decodeURIComponent(v));
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
