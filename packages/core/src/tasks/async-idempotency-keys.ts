import { createHash } from 'node:crypto';
import { GatewayError } from '@openclaw/protocol';
import { LuaScript } from '../redis/lua-script';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';

/** KEYS: idempotency key. ARGV: task id. Deletes the key only if it still stands for that task. */
const RELEASE_KEY = new LuaScript(
  'release-idempotency-key',
  1,
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
);

/**
 * A tenant's idempotency keys of async tasks: each stands for the task first submitted with it, for
 * a window, in a Redis key named by a digest of the tenant and the key. Redis errors are thrown as
 * they come (the ledger turns them into `UNAVAILABLE`).
 */
export class AsyncIdempotencyKeys {
  /**
   * @param taskExists whether a task's record still exists: a key that outlived its task's record
   * is free again.
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly taskExists: (taskId: string) => Promise<boolean>,
  ) {}

  /**
   * Claims a key for a new task.
   * @returns the id of the task the key already stands for, or undefined if this one claimed it.
   * @throws {GatewayError} `CONFLICT` (retryable) when the key stays contended.
   */
  async claim(tenant: string, key: string, taskId: string, windowMs: number): Promise<string | undefined> {
    const redisKey = this.redisKey(tenant, key);
    for (let i = 0; i < 3; i++) {
      const claimed = await this.redis.set(redisKey, taskId, 'PX', windowMs, 'NX');
      if (claimed === 'OK') return undefined;
      const existing = await this.redis.get(redisKey);
      if (existing !== null) {
        if (await this.taskExists(existing)) return existing;
        // The key outlived its task's record: it is free again.
        await this.redis.del(redisKey).catch(() => undefined);
      }
    }
    throw new GatewayError('CONFLICT', 'the idempotencyKey is contended; retry', {
      retryable: true,
      retryAfterMs: 100,
    });
  }

  /**
   * Frees a key if it still stands for `taskId` (a task that was never queued), so that it can be
   * claimed again.
   * @returns whether the key was released.
   */
  async release(tenant: string, key: string, taskId: string): Promise<boolean> {
    return (await RELEASE_KEY.run<number>(this.redis, this.redisKey(tenant, key), taskId)) === 1;
  }

  private redisKey(tenant: string, key: string): string {
    const digest = createHash('sha256').update(`${tenant}\n${key}`).digest('hex').slice(0, 32);
    return this.keys.asyncIdempotency(digest);
  }
}
