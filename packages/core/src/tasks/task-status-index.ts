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
    // Plain commands, in order on one connection (and pipelined with what else is sent in this
    // turn): a listing checks each record's status, so a task seen for a moment in both indexes,
    // or in neither, does no harm, and no transaction is needed.
    const writes: Promise<unknown>[] = [];
    if (from !== undefined) writes.push(this.redis.zrem(this.keys.taskIndex(tenant, from), taskId));
    const index = this.keys.taskIndex(tenant, to);
    writes.push(this.redis.zadd(index, now, taskId));
    // Entries older than the retention (their records are gone) are trimmed now and then, not on
    // every change: the index of completed tasks grows with every task.
    this.writes = (this.writes + 1) % INDEX_TRIM_EVERY;
    if (this.writes === 0) {
      writes.push(this.redis.zremrangebyscore(index, '-inf', now - retentionMs));
      writes.push(this.redis.pexpire(index, retentionMs));
    }
    await Promise.all(writes);
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
