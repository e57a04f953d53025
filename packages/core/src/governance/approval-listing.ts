import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import { type Approval, type ApprovalStatus, approvalsUnavailable, decodeApproval } from './approval-record';

/** Options of {@link ApprovalListing}. */
export interface ApprovalListingOptions {
  redis: RedisClient;
  keys: RedisKeys;
  /** Ends a pending approval past its time (found so by a listing). */
  expire: (tenant: string, approvalId: string) => Promise<unknown>;
}

/**
 * A tenant's approvals as operators list them, from the tenant's two indexes (pending ones by
 * expiry, all by creation), and the count of pending ones per tenant. Index entries whose records
 * are past their retention are dropped on the way.
 */
export class ApprovalListing {
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  private readonly expire: (tenant: string, approvalId: string) => Promise<unknown>;

  constructor(options: ApprovalListingOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.expire = options.expire;
  }

  /**
   * A tenant's approvals: pending ones soonest to expire first (the default), or, for another status
   * or `all`, the newest first.
   */
  async list(tenant: string, status: ApprovalStatus | 'all' = 'pending', limit = 100): Promise<Approval[]> {
    const now = Date.now();
    if (status === 'pending') {
      const ids = await this.redis.zrange(this.keys.approvalsPending(tenant), 0, limit - 1).catch(approvalsUnavailable);
      const found = await this.many(tenant, ids);
      // Past their time: expired now, by whoever looks first.
      for (const a of found) if (a.status === 'pending' && a.expiresAt <= now) await this.expire(tenant, a.approvalId);
      return found.filter((a) => a.status === 'pending' && a.expiresAt > now);
    }
    const out: Approval[] = [];
    for (let start = 0; out.length < limit && start < 10_000; start += 200) {
      const ids = await this.redis
        .zrevrange(this.keys.approvalsIndex(tenant), start, start + 199)
        .catch(approvalsUnavailable);
      if (ids.length === 0) break;
      for (const a of await this.many(tenant, ids)) {
        const shown = a.status === 'pending' && a.expiresAt <= now ? { ...a, status: 'expired' as const } : a;
        if (status === 'all' || shown.status === status) out.push(shown);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  /** Pending approvals (not yet expired) of every tenant that has had approvals. */
  async pendingCounts(): Promise<Record<string, number>> {
    const tenants = await this.redis.smembers(this.keys.approvalTenants());
    if (tenants.length === 0) return {};
    const now = Date.now();
    // One command per tenant: each tenant's approvals have their own slot.
    const counts = await Promise.all(
      tenants.map((tenant) => this.redis.zcount(this.keys.approvalsPending(tenant), `(${now}`, '+inf').catch(() => 0)),
    );
    return Object.fromEntries(tenants.map((tenant, i) => [tenant, counts[i]!]));
  }

  private async many(tenant: string, ids: string[]): Promise<Approval[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.approval(tenant, id));
    const results = (await pipeline.exec()) ?? [];
    const out: Approval[] = [];
    const gone: string[] = [];
    results.forEach(([error, h], i) => {
      const approval = error ? undefined : decodeApproval(h as Record<string, string>);
      if (approval) out.push(approval);
      else if (!error) gone.push(ids[i]!);
    });
    if (gone.length > 0) {
      // Records past their retention: drop them from the indexes.
      await this.redis
        .multi()
        .zrem(this.keys.approvalsPending(tenant), ...gone)
        .zrem(this.keys.approvalsIndex(tenant), ...gone)
        .exec()
        .catch(() => undefined);
    }
    return out;
  }
}
