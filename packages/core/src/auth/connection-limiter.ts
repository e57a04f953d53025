import { TIMINGS } from '../config/timings';
import { LuaScript } from '../redis/lua-script';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';

/**
 * Takes a slot if the principal has fewer than ARGV[3] live connections. KEYS: the principal's set.
 * ARGV: session id, expiry score, limit, TTL. Entries of replicas that died expire by themselves.
 */
const ACQUIRE = new LuaScript(
  'connection-acquire',
  1,
  `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[3])
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
`,
);

/**
 * Writes (or writes again) the entries of live sessions of one principal, expiring TTL ms from now
 * by Redis' clock. KEYS: the principal's set. ARGV: TTL, then the session ids. Entries lost meanwhile
 * (Redis restarted empty, an outage longer than the TTL, connections admitted while Redis was down)
 * are counted again.
 */
const REFRESH = new LuaScript(
  'connection-refresh',
  1,
  `
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], expires, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return #ARGV - 1
`,
);

/**
 * Caps the live connections of a principal across the cluster: a sorted set per principal of its
 * sessions, scored by when each entry expires; replicas refresh their sessions' entries and remove
 * them on close, and a dead replica's entries expire.
 */
export class ConnectionLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /**
   * Takes a connection slot. @returns false when the principal is at its limit. Fails open (true)
   * when Redis cannot be reached: the cap protects capacity, and Redis trouble is reported elsewhere.
   */
  async acquire(principal: string, sessionId: string, limit: number): Promise<boolean> {
    if (limit <= 0 || this.redis.status !== 'ready') return true;
    const taken = await ACQUIRE.run(
      this.redis,
      this.keys.connections(principal),
      sessionId,
      0,
      limit,
      TIMINGS.connectionEntryTtlMs,
    ).catch(() => 1);
    return taken === 1;
  }

  /** Frees a slot. Best effort: a lost release expires by itself. */
  release(principal: string, sessionId: string): void {
    if (this.redis.status !== 'ready') return;
    void this.redis.zrem(this.keys.connections(principal), sessionId).catch(() => undefined);
  }

  /**
   * Pushes back the expiry of live sessions' entries, writing again those that were lost. A closed
   * session is no longer in the list, and its release (on the same connection) comes after.
   */
  refresh(sessions: readonly { principal: string; sessionId: string }[]): Promise<void> {
    if (sessions.length === 0 || this.redis.status !== 'ready') return Promise.resolve();
    const byPrincipal = new Map<string, string[]>();
    for (const s of sessions) {
      const ids = byPrincipal.get(s.principal);
      if (ids) ids.push(s.sessionId);
      else byPrincipal.set(s.principal, [s.sessionId]);
    }
    const writes = [...byPrincipal].map(([principal, ids]) =>
      REFRESH.run(this.redis, this.keys.connections(principal), TIMINGS.connectionEntryTtlMs, ...ids),
    );
    return Promise.allSettled(writes).then(() => undefined);
  }
}
