import type { TaskRecord, TaskState, WireError } from '@openclaw/protocol';
import { GatewayError, MAX_TIMEOUT_MS } from '@openclaw/protocol';
import type Redis from 'ioredis';
import { MAX_STORED_OUTPUT_BYTES } from '../config/limits';
import { TIMINGS } from '../config/timings';
import type { RedisKeys } from '../redis/redis-keys';
import { taskIdTime } from './task-ids';

/** A task record with the fields only the cluster sees. */
export interface CallRecord extends TaskRecord {
  /** Principal that created the task; only it may read or cancel it. */
  principal: string;
  tenant: string;
  /** Replica holding the caller (and the deadline) of a sync task. */
  origin: string;
  /** Replica and instance the task was dispatched to, if any. */
  holder?: string;
  instanceId?: string;
}

/** The new record of a task. */
export type NewCallRecord = Omit<CallRecord, 'updatedAt' | 'output' | 'error'>;

/** Records are kept in buckets of one creation minute. */
const SLICE_MS = 60_000;
/** Buckets per minute: the records of a minute are spread by task id. */
const SHARDS = 4;

/**
 * Records of sync calls in Redis, so any replica can answer `task.get` and `task.cancel` for a call
 * another replica is running. Writes are batched: the records written in one turn of the event loop
 * go out together, one `HSET` per bucket (records of the calls created in the same minute, spread
 * over {@link SHARDS} buckets by task id), and a record created and ended in the same turn is written
 * once. A bucket expires whole, `callRecordTtlMs` after the last moment a call created in its
 * minute can end (its deadline at most `MAX_TIMEOUT_MS` later), so a record is kept at least
 * `callRecordTtlMs` after its last change. A task id made by {@link newTaskId} names its minute, so
 * a read is one `HGET`; any other id is looked for in every live bucket of its shard.
 */
export class CallRecords {
  /** Records of calls this process runs, until they end (a write needs the whole record). */
  private readonly live = new Map<string, CallRecord>();
  /** Records to write in the next batch, by task id. */
  private readonly unwritten = new Map<string, CallRecord>();
  private flushing = false;
  /** Buckets this process has set to expire, and when they do. */
  private readonly expiring = new Map<string, number>();

  constructor(
    /** @internal The command connection, shared with the dispatcher for idempotency keys. */
    readonly redis: Redis,
    /** @internal */
    readonly keys: RedisKeys,
  ) {}

  /** Writes a new record (in the next batch). */
  async create(task: NewCallRecord): Promise<void> {
    const record: CallRecord = { ...task, updatedAt: task.createdAt };
    this.live.set(task.taskId, record);
    this.write(record);
  }

  /** Records where a task was dispatched (for a cancel when its origin replica is gone). Best effort. */
  async setHolder(taskId: string, holder: string, instanceId: string): Promise<void> {
    const record = this.live.get(taskId);
    if (!record) return;
    record.holder = holder;
    record.instanceId = instanceId;
    this.write(record);
  }

  /**
   * Records the end of a task. Best effort: a lost write leaves the record as it was until it expires.
   * @param known the record as read, for a task another process created.
   */
  async finish(
    taskId: string,
    status: TaskState,
    result: { output?: unknown; error?: WireError } = {},
    known?: CallRecord,
  ): Promise<void> {
    const record = this.live.get(taskId) ?? (known ? { ...known } : undefined);
    this.live.delete(taskId);
    if (!record) return;
    record.status = status;
    record.updatedAt = Date.now();
    if (result.output !== undefined) {
      const json = JSON.stringify(result.output);
      if (json !== undefined && Buffer.byteLength(json) <= MAX_STORED_OUTPUT_BYTES) record.output = result.output;
    }
    if (result.error !== undefined) record.error = result.error;
    this.write(record);
  }

  /**
   * Reads a record.
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
   */
  async get(taskId: string): Promise<CallRecord | undefined> {
    const mine = this.unwritten.get(taskId) ?? this.live.get(taskId);
    if (mine) return { ...mine };
    try {
      const created = taskIdTime(taskId);
      const shard = shardOf(taskId);
      if (created !== undefined) {
        const json = await this.redis.hget(this.keys.callRecords(Math.floor(created / SLICE_MS), shard), taskId);
        if (json !== null) return JSON.parse(json) as CallRecord;
      } else {
        const pipeline = this.redis.pipeline();
        const now = Math.floor(Date.now() / SLICE_MS);
        for (let slice = now; slice >= now - slicesKept(); slice--) {
          pipeline.hget(this.keys.callRecords(slice, shard), taskId);
        }
        for (const [error, json] of (await pipeline.exec()) ?? []) {
          if (error) throw error;
          if (typeof json === 'string') return JSON.parse(json) as CallRecord;
        }
      }
      // Written by a replica of an earlier version: one hash per task.
      return legacyRecord(await this.redis.hgetall(this.keys.task(taskId)));
    } catch (error) {
      throw new GatewayError('UNAVAILABLE', 'the task store (Redis) is unavailable; retry shortly', { cause: error });
    }
  }

  private write(record: CallRecord): void {
    this.unwritten.set(record.taskId, record);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => this.flush());
  }

  /** Writes the batch: one HSET per bucket, and the bucket's expiry the first time this process writes it. */
  private flush(): void {
    this.flushing = false;
    if (this.unwritten.size === 0) return;
    if (this.redis.status !== 'ready') {
      this.unwritten.clear();
      return;
    }
    const now = Date.now();
    const buckets = new Map<string, { expireAt: number; fields: string[] }>();
    for (const record of this.unwritten.values()) {
      const slice = Math.floor(record.createdAt / SLICE_MS);
      const expireAt = (slice + 1) * SLICE_MS + MAX_TIMEOUT_MS + TIMINGS.callRecordTtlMs;
      // A bucket past its expiry is gone; writing would bring it back without one.
      if (expireAt <= now + 1000) continue;
      const key = this.keys.callRecords(slice, shardOf(record.taskId));
      let bucket = buckets.get(key);
      if (!bucket) {
        bucket = { expireAt, fields: [] };
        buckets.set(key, bucket);
      }
      bucket.fields.push(record.taskId, JSON.stringify(record));
    }
    this.unwritten.clear();
    for (const [key, bucket] of buckets) {
      this.redis.hset(key, ...bucket.fields).catch(() => undefined);
      if (this.expiring.get(key) !== bucket.expireAt) {
        this.expiring.set(key, bucket.expireAt);
        this.redis.pexpireat(key, bucket.expireAt).catch(() => this.expiring.delete(key));
      }
    }
    if (this.expiring.size > 4 * SHARDS * slicesKept()) {
      for (const [key, at] of this.expiring) if (at <= now) this.expiring.delete(key);
    }
  }
}

/** How many minute buckets back a record may be found in. */
function slicesKept(): number {
  return Math.ceil((MAX_TIMEOUT_MS + TIMINGS.callRecordTtlMs) / SLICE_MS) + 1;
}

/** The bucket shard of a task id. */
function shardOf(taskId: string): number {
  let h = 0;
  for (let i = taskId.length - 1; i >= Math.max(0, taskId.length - 8); i--) h = (h * 31 + taskId.charCodeAt(i)) >>> 0;
  return h % SHARDS;
}

/** A record in the hash-per-task form of earlier versions. */
function legacyRecord(h: Record<string, string>): CallRecord | undefined {
  if (h.taskId === undefined) return undefined;
  const record: CallRecord = {
    taskId: h.taskId,
    agent: h.agent ?? '',
    task: h.task ?? '',
    status: (h.status ?? 'submitted') as TaskState,
    createdAt: Number(h.createdAt),
    updatedAt: Number(h.updatedAt),
    principal: h.principal ?? '',
    tenant: h.tenant ?? '',
    origin: h.origin ?? '',
  };
  if (h.holder !== undefined) record.holder = h.holder;
  if (h.instanceId !== undefined) record.instanceId = h.instanceId;
  if (h.output !== undefined) record.output = JSON.parse(h.output);
  if (h.error !== undefined) record.error = JSON.parse(h.error) as WireError;
  return record;
}

/** The public part of a stored record, as `task.get` returns it. */
export function publicTaskRecord(task: CallRecord): TaskRecord {
  const record: TaskRecord = {
    taskId: task.taskId,
    agent: task.agent,
    task: task.task,
    status: task.status,
    createdAt: task.createdAt,
    updatedAt: task.updatedAt,
  };
  if (task.output !== undefined) record.output = task.output;
  if (task.error !== undefined) record.error = task.error;
  return record;
}
