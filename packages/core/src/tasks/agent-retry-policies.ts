import { type RetryPolicy, RetryPolicySchema } from '@openclaw/protocol';
import { TIMINGS } from '../config/timings';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';

const RETRY_CACHE_MAX = 10_000;

/**
 * Agents' default retries, set when an agent registers and used by the tasks submitted to it that
 * give none: kept in Redis for the tasks' retention, and cached here for a short while.
 */
export class AgentRetryPolicies {
  private readonly cache = new Map<string, { retry: RetryPolicy | undefined; until: number }>();

  /** @param retentionMs how long a policy is kept after it was last set. */
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly retentionMs: number,
  ) {}

  /** Records an agent's default retries. */
  async set(tenant: string, agent: string, retry: RetryPolicy): Promise<void> {
    const key = this.key(tenant, agent);
    await this.redis.set(key, JSON.stringify(retry), 'PX', this.retentionMs);
    this.cache.set(key, { retry, until: Date.now() + TIMINGS.agentRetryPolicyCacheMs });
  }

  /** An agent's default retries; undefined when it has none (or they cannot be read now). */
  async get(tenant: string, agent: string): Promise<RetryPolicy | undefined> {
    const key = this.key(tenant, agent);
    const cached = this.cache.get(key);
    if (cached && cached.until > Date.now()) return cached.retry;
    const text = await this.redis.get(key).catch(() => null);
    let retry: RetryPolicy | undefined;
    try {
      const parsed = text === null ? undefined : RetryPolicySchema.safeParse(JSON.parse(text));
      retry = parsed?.success ? parsed.data : undefined;
    } catch {
      retry = undefined;
    }
    if (this.cache.size >= RETRY_CACHE_MAX) this.cache.clear();
    this.cache.set(key, { retry, until: Date.now() + TIMINGS.agentRetryPolicyCacheMs });
    return retry;
  }

  private key(tenant: string, agent: string): string {
    return `${this.keys.registry}agent-retry:${tenant}:${agent}`;
  }
}
