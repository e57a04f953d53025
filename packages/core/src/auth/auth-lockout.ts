import { isIP } from 'node:net';
import { LuaScript } from '../redis/lua-script';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';

/** Options of {@link AuthLockout}. */
export interface AuthLockoutOptions {
  /** Failures within the window that lock an address out; 0 disables lockout. */
  maxFailures: number;
  windowMs: number;
  lockoutMs: number;
}

/** Counts a failure; locks the address when the count reaches ARGV[1]. KEYS: failures, lock. */
const RECORD_FAILURE = new LuaScript(
  'auth-record-failure',
  2,
  `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`,
);

/**
 * Locks out an address after repeated failed authentications, cluster-wide (counters in Redis), so
 * guessing keys from one address is slowed to a few tries per lockout period on any replica.
 */
export class AuthLockout {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly options: AuthLockoutOptions,
  ) {}

  /** How long the address stays locked out, in ms; 0 when it is not. Fails open if Redis is down. */
  async lockedFor(address: string): Promise<number> {
    if (this.options.maxFailures === 0 || this.redis.status !== 'ready') return 0;
    const ttl = await this.redis.pttl(this.keys.authLock(address)).catch(() => -2);
    return Math.max(ttl, 0);
  }

  /** Counts a failed authentication. @returns whether the address is now locked out. */
  async recordFailure(address: string): Promise<boolean> {
    if (this.options.maxFailures === 0 || this.redis.status !== 'ready') return false;
    const locked = await RECORD_FAILURE.run(
      this.redis,
      this.keys.authFailures(address),
      this.keys.authLock(address),
      this.options.maxFailures,
      this.options.windowMs,
      this.options.lockoutMs,
    ).catch(() => 0);
    return locked === 1;
  }
}

/**
 * The client address of a request: the socket's peer, or, when the peer is a trusted proxy, the
 * nearest address in X-Forwarded-For that is not itself a trusted proxy.
 */
export function clientAddress(
  socketAddress: string | undefined,
  forwardedFor: string | string[] | undefined,
  trustedProxies: readonly string[],
): string {
  const peer = normalise(socketAddress ?? 'unknown');
  if (!trustedProxies.includes(peer) || forwardedFor === undefined) return peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((h) => normalise(h.trim()))
    .filter((h) => isIP(h) !== 0);
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!trustedProxies.includes(hops[i]!)) return hops[i]!;
  }
  return peer;
}

function normalise(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
