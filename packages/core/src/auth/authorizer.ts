import { GatewayError } from '@openclaw/protocol';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { Policy } from './policy';
import type { Principal } from './principal';

/** The policy as stored in Redis. */
export interface StoredPolicy {
  text: string;
  version: number;
  appliedBy: string;
  appliedAt: number;
}

/**
 * Decides every permission through the current policy, which lives in Redis: `apply` stores a checked
 * policy and bumps its version; every replica polls the version every second and reloads, so a change
 * reaches the whole cluster, and its live connections, without a restart.
 */
export class Authorizer {
  private policy: Policy = Policy.EMPTY;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly logger: Logger,
  ) {}

  /** The policy in force here. */
  get current(): Policy {
    return this.policy;
  }

  /** Loads the stored policy and starts following changes. */
  async start(): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => void this.reload(), 1000);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Whether a principal holds a permission now. */
  can(principal: Principal, permission: string): boolean {
    return this.policy.can(principal, permission);
  }

  /**
   * Refuses a principal without a permission.
   * @throws {GatewayError} `FORBIDDEN` naming the permission (in its message and `details.permission`,
   * which the audit entry of the refusal records).
   */
  require(principal: Principal, permission: string): void {
    if (this.policy.can(principal, permission)) return;
    throw new GatewayError('FORBIDDEN', `missing permission '${permission}'`, { details: { permission } });
  }

  /**
   * Checks and stores a policy for the whole cluster. @returns its new version.
   * @throws {PolicyError} naming the line and field of every problem; nothing is stored then.
   */
  async apply(text: string, appliedBy: string): Promise<number> {
    Policy.parse(text);
    const key = this.keys.policy();
    const results = await this.redis
      .multi()
      .hset(key, { text, appliedBy, appliedAt: String(Date.now()) })
      .hincrby(key, 'version', 1)
      .exec();
    const version = Number(results?.[1]?.[1]);
    await this.reload();
    return version;
  }

  /** The stored policy, if any. */
  async stored(): Promise<StoredPolicy | undefined> {
    const h = await this.redis.hgetall(this.keys.policy());
    if (h.text === undefined) return undefined;
    return { text: h.text, version: Number(h.version), appliedBy: h.appliedBy ?? '', appliedAt: Number(h.appliedAt) };
  }

  private async reload(): Promise<void> {
    if (this.polling || this.redis.status !== 'ready') return;
    this.polling = true;
    try {
      const version = Number((await this.redis.hget(this.keys.policy(), 'version')) ?? '0');
      if (version === this.policy.version) return;
      const text = (await this.redis.hget(this.keys.policy(), 'text')) ?? '';
      try {
        this.policy = Policy.parse(text, version);
        this.logger.info({ version }, 'policy loaded');
      } catch (error) {
        this.logger.error(
          { version, err: (error as Error).message },
          'stored policy does not parse; keeping the previous one',
        );
      }
    } catch {
      // Redis trouble: keep the policy in force; the next poll tries again.
    } finally {
      this.polling = false;
    }
  }
}

/** The permission a `FORBIDDEN` error names (see {@link Authorizer.require}), for its audit entry. */
export function deniedPermission(error: { details?: unknown }): { permission?: string } {
  const permission = (error.details as { permission?: unknown } | undefined)?.permission;
  return typeof permission === 'string' ? { permission } : {};
}
