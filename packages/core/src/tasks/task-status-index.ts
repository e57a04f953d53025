import type { TaskState } from '@openclaw/protocol';
import type Redis from 'ioredis';
import type { RedisKeys } from '../redis/redis-keys';

/** One index write in this many also trims the index of entries past the retention. */
const INDEX_TRIM_EVERY = 64;

/**
 * A tenant's async tasks by status: one sorted set per status, scored by the time of the task's
 * last change of status. Secondary to the records: a listing checks each record's status, and drops
 * the ids whose records have expired.
 */
export class TaskStatusIndex {
  private writes = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** Moves a task from the index of its previous status (none for a new task) to that of its new one. */
  async move(
    tenant: string,
    taskId: string,
    from: TaskState | undefined,
    to: TaskState,
    now: number,
    retentionMs: number,
  ): Promise<void> {
    const multi = this.redis.multi();
    if (from !== undefined) multi.zrem(this.keys.taskIndex(tenant, from), taskId);
    const index = this.keys.taskIndex(tenant, to);
    multi.zadd(index, now, taskId);
    // Entries older than the retention (their records are gone) are trimmed now and then, not on
    // every change: the index of completed tasks grows with every task.
    this.writes = (this.writes + 1) % INDEX_TRIM_EVERY;
    if (this.writes === 0) {
      multi.zremrangebyscore(index, '-inf', now - retentionMs);
      multi.pexpire(index, retentionMs);
    }
    await multi.exec();
  }

  /** The ids of a tenant's tasks that last changed to a status, most recent change first. */
  newest(tenant: string, status: TaskState, limit: number): Promise<string[]> {
    return this.redis.zrevrange(this.keys.taskIndex(tenant, status), 0, limit - 1);
  }

  /** Drops ids whose records are gone (past their retention), in the background. */
  forget(tenant: string, status: TaskState, taskIds: readonly string[]): void {
    if (taskIds.length > 0) {
      void this.redis.zrem(this.keys.taskIndex(tenant, status), ...taskIds).catch(() => undefined);
    }
  }
}
