import type { TaskRecord, TaskState, WireError } from '@openclaw/protocol';
import { GatewayError, MAX_TIMEOUT_MS } from '@openclaw/protocol';
import { MAX_STORED_OUTPUT_BYTES } from '../config/limits';
import { TIMINGS } from '../config/timings';
import { LuaScript } from '../redis/lua-script';
import type { RedisClient } from '../redis/redis-connection';
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

/** How long a call is to be kept, beside its record. */
export interface CallLifetime {
  /** When the call ends at the latest: an unfinished call's record is kept until then, and after. */
  deadline: number;
  /** The call has an idempotencyKey: its record is kept as long as the key. */
  keyed: boolean;
}

/** Options of {@link CallRecords}. */
export interface CallRecordsOptions {
  /** How long a record is kept after its last change. Default 5 minutes. */
  ttlMs?: number;
}

/** A record with its lifetime, as this process writes it. */
interface Tracked {
  record: CallRecord;
  lifetime: CallLifetime;
  /** Whether a version of the record has been written (others may have read it). */
  written?: boolean;
}

/**
 * Sets a key's expiry to ARGV[1] (epoch ms) unless it already expires later (what `PEXPIREAT ... GT`
 * does on Redis 7, here for Redis 5 and later). KEYS: the key.
 */
const EXTEND_EXPIRY = new LuaScript(
  'call-records-extend-expiry',
  1,
  `
local at = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
if ttl >= 0 then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + ttl >= at then return 0 end
end
redis.call('PEXPIREAT', KEYS[1], at)
return 1
`,
);

/**
 * How long a started call's record may wait to be written: a call that ends sooner is written once.
 * A read from another replica that finds nothing for a call this young looks again once it is due.
 */
const STARTED_RECORD_DELAY_MS = 20;

/**
 * How long the record of a call that ended before its start was written may wait to join others in
 * one `HSET`: nobody could read that call yet, and a read from another replica looks again until
 * {@link STARTED_RECORD_DELAY_MS} and more after it began. The end of a call whose start is written
 * goes out at once.
 */
const ENDED_RECORD_DELAY_MS = 10;

const TERMINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'canceled', 'rejected']);

/** Records are kept in buckets of one creation minute. */
const SLICE_MS = 60_000;
/** Buckets per minute: the records of a minute are spread by task id. */
const SHARDS = 4;
/** A bucket's expiry is moved in steps of this much, so that it is written about once per step. */
const EXPIRY_STEP_MS = 10_000;

/**
 * Records of sync calls in Redis, so any replica can answer `task.get` and `task.cancel` for a call
 * another replica is running. Writes are batched: the records written in one turn of the event loop
 * go out together, one `HSET` per bucket (records of the calls created in the same minute, spread
 * over {@link SHARDS} buckets by task id), and a record created and ended in the same turn is written
 * once. A bucket expires whole once every record in it has been kept `ttlMs` after its last change
 * (an unfinished call's, after its deadline); calls with an idempotencyKey are in buckets of their
 * own, kept as long as their keys. A task id made by {@link newTaskId} names its minute, so a read is
 * two `HGET`s in one round trip; any other id is looked for in every live bucket of its shard.
 */
export class CallRecords {
  private readonly ttlMs: number;
  /** Records of calls this process runs, until they end (a write needs the whole record). */
  private readonly live = new Map<string, Tracked>();
  /** Records to write in the next batch, by task id. */
  private readonly unwritten = new Map<string, Tracked>();
  private flushing = false;
  /** The delayed flush of started records, if one is due. */
  private flushTimer: NodeJS.Timeout | undefined;
  /** When {@link CallRecords.flushTimer} fires. */
  private flushDue = 0;
  /** Buckets this process has set to expire, and when (forgotten when Redis reconnects: it may be empty). */
  private readonly expiring = new Map<string, number>();

  constructor(
    /** @internal The command connection, shared with the dispatcher for idempotency keys. */
    readonly redis: RedisClient,
    /** @internal */
    readonly keys: RedisKeys,
    options: CallRecordsOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 300_000;
    redis.on('ready', () => this.expiring.clear());
  }

  /** Writes a new record (in the next batch). */
  async create(task: NewCallRecord, lifetime: CallLifetime = { deadline: Date.now(), keyed: false }): Promise<void> {
    const tracked = { record: { ...task, updatedAt: task.createdAt }, lifetime };
    this.live.set(task.taskId, tracked);
    this.write(tracked);
  }

  /** Records where a task was dispatched (for a cancel when its origin replica is gone). Best effort. */
  async setHolder(taskId: string, holder: string, instanceId: string): Promise<void> {
    const tracked = this.live.get(taskId);
    if (!tracked) return;
    tracked.record.holder = holder;
    tracked.record.instanceId = instanceId;
    this.write(tracked);
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
    const tracked =
      this.live.get(taskId) ??
      (known ? { record: { ...known }, lifetime: { deadline: Date.now(), keyed: false }, written: true } : undefined);
    this.live.delete(taskId);
    if (!tracked) return;
    const { record } = tracked;
    record.status = status;
    record.updatedAt = Date.now();
    // Ended: kept from now on, not from the deadline.
    tracked.lifetime = { ...tracked.lifetime, deadline: record.updatedAt };
    if (result.output !== undefined) {
      const json = JSON.stringify(result.output);
      if (json !== undefined && Buffer.byteLength(json) <= MAX_STORED_OUTPUT_BYTES) record.output = result.output;
    }
    if (result.error !== undefined) record.error = result.error;
    this.write(tracked);
  }

  /**
   * Reads a record.
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
   */
  async get(taskId: string): Promise<CallRecord | undefined> {
    const mine = this.unwritten.get(taskId) ?? this.live.get(taskId);
    if (mine) return { ...mine.record };
    const found = await this.read(taskId);
    if (found) return found;
    // A call started a moment ago on another replica may not be written yet: look again once it is.
    const created = taskIdTime(taskId);
    const due = created === undefined ? 0 : created + STARTED_RECORD_DELAY_MS + 50 - Date.now();
    if (due <= 0 || due > STARTED_RECORD_DELAY_MS + 50) return undefined;
    await new Promise((resolve) => setTimeout(resolve, due));
    return this.read(taskId);
  }

  /** A record as stored. */
  private async read(taskId: string): Promise<CallRecord | undefined> {
    try {
      const created = taskIdTime(taskId);
      const shard = shardOf(taskId);
      const pipeline = this.redis.pipeline();
      if (created !== undefined) {
        const slice = Math.floor(created / SLICE_MS);
        pipeline.hget(this.keys.callRecords(slice, shard), taskId);
        pipeline.hget(this.keys.callRecords(slice, shard, true), taskId);
      } else {
        const now = Math.floor(Date.now() / SLICE_MS);
        for (let slice = now; slice >= now - this.slicesKept(); slice--) {
          pipeline.hget(this.keys.callRecords(slice, shard), taskId);
          pipeline.hget(this.keys.callRecords(slice, shard, true), taskId);
        }
      }
      for (const [error, json] of (await pipeline.exec()) ?? []) {
        if (error) throw error;
        if (typeof json === 'string') return decodeRecord(taskId, json);
      }
      // Written by a replica of an earlier version: one hash per task.
      return legacyRecord(await this.redis.hgetall(this.keys.task(taskId)));
    } catch (error) {
      throw new GatewayError('UNAVAILABLE', 'the task store (Redis) is unavailable; retry shortly', { cause: error });
    }
  }

  /**
   * Queues a record for the next batch. An ended record goes out at the end of this turn; a started
   * one waits up to {@link STARTED_RECORD_DELAY_MS} (a call that ends meanwhile is written once,
   * ended).
   */
  private write(tracked: Tracked): void {
    this.unwritten.set(tracked.record.taskId, tracked);
    if (this.flushing) return;
    if (TERMINAL.has(tracked.record.status) && tracked.written) {
      // Others may have read it as running: its end goes out at the end of this turn.
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
      this.flushing = true;
      setImmediate(() => this.flush());
      return;
    }
    const delay = TERMINAL.has(tracked.record.status) ? ENDED_RECORD_DELAY_MS : STARTED_RECORD_DELAY_MS;
    const due = Date.now() + delay;
    if (this.flushTimer && this.flushDue <= due) return;
    clearTimeout(this.flushTimer);
    this.flushDue = due;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, delay);
  }

  /**
   * Writes the batch: one HSET per bucket, and the bucket's expiry moved later when a record in it
   * must be kept longer than this process last set (never earlier: {@link EXTEND_EXPIRY}).
   */
  private flush(): void {
    this.flushing = false;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.unwritten.size === 0) return;
    if (this.redis.status !== 'ready') {
      this.unwritten.clear();
      return;
    }
    const buckets = new Map<string, { expireAt: number; fields: string[] }>();
    for (const tracked of this.unwritten.values()) {
      tracked.written = true;
      const { record, lifetime } = tracked;
      const keep = lifetime.keyed ? Math.max(this.ttlMs, TIMINGS.syncIdempotencyTtlMs) : this.ttlMs;
      const expireAt = Math.ceil((Math.max(Date.now(), lifetime.deadline) + keep) / EXPIRY_STEP_MS) * EXPIRY_STEP_MS;
      // The minute of the task id, where readers look: the call may have started in the next one
      // (its id is made at admission, and a loaded replica routes it some time later).
      const key = this.keys.callRecords(
        Math.floor((taskIdTime(record.taskId) ?? record.createdAt) / SLICE_MS),
        shardOf(record.taskId),
        lifetime.keyed,
      );
      let bucket = buckets.get(key);
      if (!bucket) {
        bucket = { expireAt, fields: [] };
        buckets.set(key, bucket);
      }
      bucket.expireAt = Math.max(bucket.expireAt, expireAt);
      bucket.fields.push(record.taskId, encodeRecord(record));
    }
    this.unwritten.clear();
    for (const [key, bucket] of buckets) {
      this.redis.hset(key, ...bucket.fields).catch(() => undefined);
      if ((this.expiring.get(key) ?? 0) < bucket.expireAt) {
        this.expiring.set(key, bucket.expireAt);
        // Set on a new bucket, moved later on one with an earlier expiry, never earlier: another
        // replica's record in the same bucket may need longer.
        EXTEND_EXPIRY.run(this.redis, key, bucket.expireAt).catch(() => this.expiring.delete(key));
      }
    }
    if (this.expiring.size > 16 * SHARDS * this.slicesKept()) {
      const now = Date.now();
      for (const [key, at] of this.expiring) if (at <= now) this.expiring.delete(key);
    }
  }

  /** How many minute buckets back a record may be found in. */
  private slicesKept(): number {
    return (
      Math.ceil((MAX_TIMEOUT_MS + Math.max(this.ttlMs, TIMINGS.syncIdempotencyTtlMs) + EXPIRY_STEP_MS) / SLICE_MS) + 1
    );
  }
}

/**
 * Task states by their number in a stored record. A storage format, kept apart from the protocol's
 * list on purpose: records written by one version are read by the next, so never reorder it; a new
 * state goes at the end.
 */
const STATES: readonly TaskState[] = [
  'submitted',
  'working',
  'input-required',
  'completed',
  'failed',
  'canceled',
  'rejected',
];

/**
 * A record as stored: a JSON array without field names, `[state, created, updated, agent, task,
 * principal, tenant, origin, holder, instanceId, [output]?, error?]`. The task id is the hash field
 * already; `created` counts from the time in the task id (0 for one made by {@link newTaskId}) and
 * `updated` from `created`; the state is its number in {@link STATES}; where a call runs (origin,
 * holder, instance: only a cancel needs them) is dropped once it has ended (0). The output is wrapped,
 * so that an output of `null` differs from none. About 120 bytes plus the output, against 350 as an
 * object.
 */
function encodeRecord(record: CallRecord): string {
  const base = taskIdTime(record.taskId) ?? 0;
  const running = !TERMINAL.has(record.status);
  const row: unknown[] = [
    STATES.indexOf(record.status),
    record.createdAt - base,
    record.updatedAt - record.createdAt,
    record.agent,
    record.task,
    record.principal,
    record.tenant,
    running ? record.origin : 0,
    (running && record.holder) || 0,
    (running && record.instanceId) || 0,
  ];
  if (record.output !== undefined || record.error !== undefined) {
    row.push(record.output === undefined ? [] : [record.output]);
  }
  if (record.error !== undefined) row.push(record.error);
  return JSON.stringify(row);
}

/** A stored record: the array of {@link encodeRecord}, or the JSON object earlier versions wrote. */
function decodeRecord(taskId: string, json: string): CallRecord {
  if (json[0] !== '[') return JSON.parse(json) as CallRecord;
  const row = JSON.parse(json) as unknown[];
  const createdAt = (taskIdTime(taskId) ?? 0) + (row[1] as number);
  const record: CallRecord = {
    taskId,
    agent: row[3] as string,
    task: row[4] as string,
    status: STATES[row[0] as number] ?? 'failed',
    createdAt,
    updatedAt: createdAt + (row[2] as number),
    principal: row[5] as string,
    tenant: row[6] as string,
    origin: typeof row[7] === 'string' ? row[7] : '',
  };
  if (typeof row[8] === 'string') record.holder = row[8];
  if (typeof row[9] === 'string') record.instanceId = row[9];
  const output = row[10] as unknown[] | undefined;
  if (output && output.length > 0) record.output = output[0];
  if (row[11] !== undefined) record.error = row[11] as WireError;
  return record;
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
