import type { TaskState } from '@openclaw/protocol';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';

/** One flush in this many also trims the indexes it wrote of entries past the retention. */
const INDEX_TRIM_EVERY = 64;

/** A task's move between indexes, waiting for the end of the turn. */
interface PendingMove {
  tenant: string;
  /** Its status before the first move of the turn (none for a new task). */
  from: TaskState | undefined;
  /** Its status after the last one. */
  to: TaskState;
  at: number;
  retentionMs: number;
}

/**
 * A tenant's async tasks by status: one sorted set per status, scored by the time of the task's
 * last change of status. Secondary to the records: a listing checks each record's status, and drops
 * the ids whose records have expired.
 *
 * The moves of one turn of the event loop are written together at its end: one `ZREM` and one
 * `ZADD` per index they touch, whatever the number of tasks, and a task that changed twice in the
 * turn is moved once. A listing on this process writes what is waiting first; another process may
 * see a move up to one turn of this one late.
 */
export class TaskStatusIndex {
  private pending = new Map<string, PendingMove>();
  private scheduled = false;
  private flushes = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** Moves a task from the index of its previous status (none for a new task) to that of its new one. */
  move(
    tenant: string,
    taskId: string,
    from: TaskState | undefined,
    to: TaskState,
    now: number,
    retentionMs: number,
  ): void {
    const earlier = this.pending.get(taskId);
    this.pending.set(taskId, { tenant, from: earlier === undefined ? from : earlier.from, to, at: now, retentionMs });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Sends the waiting moves. Plain commands, in order on one connection (and pipelined with what
   * else is sent in this turn): a listing checks each record's status, so a task seen for a moment
   * in both indexes, or in neither, does no harm, and no transaction is needed.
   */
  flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    const moves = this.pending;
    this.pending = new Map();
    const removals = new Map<string, string[]>();
    const additions = new Map<string, { members: (string | number)[]; oldest: number }>();
    for (const [taskId, move] of moves) {
      if (move.from !== undefined && move.from !== move.to) {
        const key = this.keys.taskIndex(move.tenant, move.from);
        const ids = removals.get(key);
        if (ids) ids.push(taskId);
        else removals.set(key, [taskId]);
      }
      const key = this.keys.taskIndex(move.tenant, move.to);
      const oldest = move.at - move.retentionMs;
      const added = additions.get(key);
      if (added) {
        added.members.push(move.at, taskId);
        added.oldest = Math.min(added.oldest, oldest);
      } else additions.set(key, { members: [move.at, taskId], oldest });
    }
    const ignore = (): undefined => undefined;
    for (const [key, ids] of removals) this.redis.zrem(key, ...ids).catch(ignore);
    // Entries older than the retention (their records are gone) are trimmed now and then, not on
    // every flush: the index of completed tasks grows with every task.
    this.flushes = (this.flushes + 1) % INDEX_TRIM_EVERY;
    const trim = this.flushes === 0;
    for (const [key, { members, oldest }] of additions) {
      this.redis.zadd(key, ...members).catch(ignore);
      if (trim) {
        this.redis.zremrangebyscore(key, '-inf', oldest).catch(ignore);
        this.redis.pexpire(key, Math.max(1, Date.now() - oldest)).catch(ignore);
      }
    }
  }

  /** The ids of a tenant's tasks that last changed to a status, most recent change first. */
  newest(tenant: string, status: TaskState, limit: number): Promise<string[]> {
    // This process's own moves first (the same connection keeps the order).
    this.flush();
    return this.redis.zrevrange(this.keys.taskIndex(tenant, status), 0, limit - 1);
  }

  /** Drops ids whose records are gone (past their retention), in the background. */
  forget(tenant: string, status: TaskState, taskIds: readonly string[]): void {
    if (taskIds.length > 0) {
      void this.redis.zrem(this.keys.taskIndex(tenant, status), ...taskIds).catch(() => undefined);
    }
  }
}
