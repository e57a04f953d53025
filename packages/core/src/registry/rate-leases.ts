import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import { LEASE_TOKENS } from './registry-scripts';

/** A cluster-wide limit: `rate` tokens a second, up to `burst` saved (rate 0: no limit). */
export interface RateLimit {
  id: string;
  rate: number;
  burst: number;
}

/** Tokens this process holds of one cluster-wide bucket. */
interface Lease {
  tokens: number;
  /** Leased tokens not spent by then are dropped (never given back: the bucket may only under-admit). */
  until: number;
  /** The lease being taken from Redis, shared by every call that waits for a token. */
  pending?: Promise<void>;
  /** After a refusal: no token until then (ms), without asking Redis. */
  refusedUntil: number;
}

/**
 * How long leased tokens stay usable here. Tokens a process leased and did not spend in that time
 * are lost to everyone, so a cluster of N processes admits at most the limit, and at worst N leases'
 * worth fewer calls than the limit in a window of this length.
 */
export const LEASE_TTL_MS = 1000;

/**
 * The size of one lease: about 20 ms of the rate, at least 1 and at most a tenth of the burst, so
 * a limit of a few calls a second is charged call by call, and one of thousands takes one round trip
 * to Redis per few dozen calls.
 */
export function leaseSize(limit: Pick<RateLimit, 'rate' | 'burst'>): number {
  return Math.max(1, Math.min(Math.floor(limit.rate / 50), Math.floor(limit.burst / 10)));
}

/**
 * Cluster-wide token buckets (per principal and per tenant), spent from leases: a process takes a
 * few tokens at a time from the bucket in Redis (one script), and spends them locally. The bucket in
 * Redis never hands out more than the limit, so the cluster never admits more than it; tokens leased
 * and not spent within {@link LEASE_TTL_MS} are dropped.
 */
export class RateLeases {
  private readonly redis: RedisClient;
  private readonly leases = new Map<string, Lease>();

  constructor(
    redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {
    this.redis = redis;
  }

  /**
   * Takes one token of each limit (a limit of rate 0 is none), or none of them.
   * @returns undefined when admitted, or the refusal: which scope, and when to retry.
   */
  async take(
    limits: readonly { scope: 'principal' | 'tenant'; limit: RateLimit }[],
  ): Promise<{ scope: 'principal' | 'tenant'; retryAfterMs: number } | undefined> {
    const taken: Lease[] = [];
    for (const { scope, limit } of limits) {
      if (limit.rate <= 0) continue;
      const key = this.keys.rateBucket(scope, limit.id);
      const outcome = await this.takeOne(key, limit);
      if (typeof outcome === 'number') {
        // Neither is charged: the tokens already taken go back to this process's leases.
        for (const lease of taken) lease.tokens += 1;
        return { scope, retryAfterMs: outcome };
      }
      taken.push(outcome);
    }
    return undefined;
  }

  /** One token of a bucket. @returns its lease, or the time until one is back. */
  private async takeOne(key: string, limit: RateLimit): Promise<Lease | number> {
    for (;;) {
      const now = Date.now();
      let lease = this.leases.get(key);
      if (!lease) {
        lease = { tokens: 0, until: 0, refusedUntil: 0 };
        this.leases.set(key, lease);
      }
      if (lease.until <= now) lease.tokens = 0;
      if (lease.tokens >= 1) {
        lease.tokens -= 1;
        return lease;
      }
      if (lease.pending) {
        await lease.pending;
        continue;
      }
      if (lease.refusedUntil > now) return lease.refusedUntil - now;
      let refusal: number | undefined;
      const current = lease;
      const leasing = this.lease(key, limit).then(
        ([granted, retryAfterMs]) => {
          current.pending = undefined;
          if (granted > 0) {
            current.tokens += granted;
            current.until = Date.now() + LEASE_TTL_MS;
          } else {
            refusal = Math.max(1, retryAfterMs);
            // Callers that arrive meanwhile are refused without a round trip each, for a short while.
            current.refusedUntil = Date.now() + Math.min(refusal, 50);
          }
        },
        () => {
          current.pending = undefined;
          // Redis is unreachable: the limit cannot be checked, so the call is not refused for it.
          current.tokens += 1;
          current.until = Date.now() + LEASE_TTL_MS;
        },
      );
      current.pending = leasing;
      await leasing;
      if (refusal !== undefined) return refusal;
      if (this.leases.size > 10_000) this.forgetIdle();
    }
  }

  private async lease(key: string, limit: RateLimit): Promise<[number, number]> {
    const reply = (await LEASE_TOKENS.run(this.redis, key, limit.rate, limit.burst, leaseSize(limit))) as [
      number,
      string,
    ];
    return [Number(reply[0]), Number(reply[1])];
  }

  /** Drops leases that have run out, so a process seeing many principals does not grow without end. */
  private forgetIdle(): void {
    const now = Date.now();
    for (const [key, lease] of this.leases) {
      if (!lease.pending && lease.until <= now && lease.refusedUntil <= now) this.leases.delete(key);
    }
  }
}
