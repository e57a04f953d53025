import type { TaskRecord, TaskState, WireError } from '@openclaw/protocol';
import { GatewayError } from '@openclaw/protocol';
import type Redis from 'ioredis';
import { MAX_STORED_OUTPUT_BYTES } from '../config/limits';
import { TIMINGS } from '../config/timings';
import type { RedisKeys } from '../redis/redis-keys';

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

/**
 * Task records in Redis (one hash per task, kept for an hour after the last change), so any replica
 * can answer `task.get` and `task.cancel` for a task another replica is running.
 */
export class CallRecords {
  constructor(
    /** @internal The command connection, shared with the dispatcher for idempotency keys. */
    readonly redis: Redis,
    /** @internal */
    readonly keys: RedisKeys,
  ) {}

  /** Writes a new record. Resolves once Redis has it. */
  async create(task: NewCallRecord): Promise<void> {
    const fields: Record<string, string> = {
      taskId: task.taskId,
      agent: task.agent,
      task: task.task,
      status: task.status,
      createdAt: String(task.createdAt),
      updatedAt: String(task.createdAt),
      principal: task.principal,
      tenant: task.tenant,
      origin: task.origin,
    };
    if (task.holder !== undefined) fields.holder = task.holder;
    if (task.instanceId !== undefined) fields.instanceId = task.instanceId;
    // Plain commands, not a pipeline: auto-pipelining batches them with the rest of the tick's traffic.
    const key = this.keys.task(task.taskId);
    await Promise.all([this.redis.hset(key, fields), this.redis.pexpire(key, TIMINGS.callRecordTtlMs)]);
  }

  /** Records where a task was dispatched (for a cancel when its origin replica is gone). Best effort. */
  async setHolder(taskId: string, holder: string, instanceId: string): Promise<void> {
    await this.redis.hset(this.keys.task(taskId), { holder, instanceId }).catch(() => undefined);
  }

  /** Records the end of a task. Best effort: a lost write leaves the record expiring in an hour. */
  async finish(taskId: string, status: TaskState, result: { output?: unknown; error?: WireError } = {}): Promise<void> {
    if (this.redis.status !== 'ready') return;
    const fields: Record<string, string> = { status, updatedAt: String(Date.now()) };
    if (result.output !== undefined) {
      const json = JSON.stringify(result.output);
      if (json !== undefined && Buffer.byteLength(json) <= MAX_STORED_OUTPUT_BYTES) fields.output = json;
    }
    if (result.error !== undefined) fields.error = JSON.stringify(result.error);
    const key = this.keys.task(taskId);
    await Promise.all([this.redis.hset(key, fields), this.redis.pexpire(key, TIMINGS.callRecordTtlMs)]).catch(
      () => undefined,
    );
  }

  /**
   * Reads a record.
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
   */
  async get(taskId: string): Promise<CallRecord | undefined> {
    let h: Record<string, string>;
    try {
      h = await this.redis.hgetall(this.keys.task(taskId));
    } catch (error) {
      throw new GatewayError('UNAVAILABLE', 'the task store (Redis) is unavailable; retry shortly', { cause: error });
    }
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
