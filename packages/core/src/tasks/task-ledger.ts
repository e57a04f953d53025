import { createHash } from 'node:crypto';
import { GatewayError, type TaskState } from '@openclaw/protocol';
import { LuaScript } from '../redis/lua-script';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import { AsyncIdempotencyKeys } from './async-idempotency-keys';
import { decodeLedgerTask, encodeLedgerTask, type LedgerTask } from './ledger-record';
import { TaskStatusIndex } from './task-status-index';

/** Events kept per task (approximately: the stream is trimmed with `MAXLEN ~`). */
export const MAX_TASK_EVENTS = 1000;

/** A task's event as kept in its stream: the frame clients receive, and its cursor. */
export interface StoredTaskEvent {
  cursor: string;
  frame: Record<string, unknown>;
}

/** A state change to record. */
export interface Transition {
  /** The new status; absent for an event that changes no status (progress). */
  status?: TaskState;
  /**
   * Statuses the change may start from. Default: any status but a terminal one. `'any'` also
   * overrides a terminal status (an operator's retry of a failed task).
   */
  from?: readonly TaskState[] | 'any';
  /**
   * Applies the change only while the record's `attempts` is this attempt: a worker whose job lock
   * expired (a long pause, an outage) and whose attempt another worker has since taken over cannot
   * decide the task with its late result.
   */
  whileAttempt?: number;
  /** Applies the change only while the record's field has this value. */
  whileField?: { name: string; value: string };
  /** Fields to set; an `undefined` value deletes the field. */
  fields?: Record<string, string | undefined>;
  /** The event's fields beyond `event`, `taskId` and `status` (output, error, progress, attempt, ...). */
  event?: Record<string, unknown>;
  /** The event's name; `task.status` unless given. */
  eventName?: 'task.status' | 'task.progress';
  /** Also tell the tenant's operators (a task now needs a human). */
  notifyOperators?: boolean;
}

/** What a transition did. */
export interface TransitionResult {
  applied: boolean;
  /** The status before (or the status that kept the change from happening). */
  previous: TaskState | undefined;
  cursor?: string;
}

/**
 * KEYS: task hash, events stream. ARGV: new status ('' for none), now, frame JSON (without cursor),
 * ttl ms, allowed-from ('' = any non-terminal, '*' = any, else a comma list), the `attempts` the
 * record must have ('' = any), a field that must have a value ('' = none) and that value, channel
 * count n, n channels, then field/value pairs (an empty value deletes the field), then the task's
 * own channel, published to only once someone other than the submitter watches the task (the field
 * `watched`, set by {@link TaskLedger.markWatched}). Returns {applied (0/1), previous status, cursor}.
 */
const TRANSITION = `
local now = redis.call('HMGET', KEYS[1], 'status', 'attempts', 'watched', ARGV[7] ~= '' and ARGV[7] or 'status')
local cur = now[1]
if not cur then return {0, ''} end
local allowed = ARGV[5]
if allowed == '' then
  if cur == 'completed' or cur == 'failed' or cur == 'canceled' or cur == 'rejected' then return {0, cur} end
elseif allowed ~= '*' then
  if not string.find(',' .. allowed .. ',', ',' .. cur .. ',', 1, true) then return {0, cur} end
end
if ARGV[6] ~= '' and now[2] ~= ARGV[6] then return {0, cur} end
if ARGV[7] ~= '' and now[4] ~= ARGV[8] then return {0, cur} end
local n = tonumber(ARGV[9])
local set = {}
for i = 10 + n, #ARGV - 1, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else set[#set + 1] = ARGV[i]; set[#set + 1] = ARGV[i + 1] end
end
if ARGV[1] ~= '' then set[#set + 1] = 'status'; set[#set + 1] = ARGV[1] end
set[#set + 1] = 'updatedAt'; set[#set + 1] = ARGV[2]
redis.call('HSET', KEYS[1], unpack(set))
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', '${MAX_TASK_EVENTS}', '*', 'e', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local msg = '{"cursor":"' .. id .. '",' .. string.sub(ARGV[3], 2)
for i = 1, n do redis.call('PUBLISH', ARGV[9 + i], msg) end
if now[3] then redis.call('PUBLISH', ARGV[#ARGV], msg) end
return {1, cur, id}
`;

/**
 * KEYS: task hash, events stream. ARGV: ttl ms, frame JSON (without cursor), channel count n, n
 * channels, then the record's field/value pairs. Writes a new task's record and its first event in
 * one step. Returns the event's cursor.
 */
const CREATE = `
local n = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 4 + n))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', '${MAX_TASK_EVENTS}', '*', 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
local msg = '{"cursor":"' .. id .. '",' .. string.sub(ARGV[2], 2)
for i = 1, n do redis.call('PUBLISH', ARGV[3 + i], msg) end
return id
`;

/**
 * KEYS: task hash, events stream. ARGV: worker id, now, tenant, principal, the event frame's JSON
 * without its closing brace, channel count n, n channels, the task's own channel.
 *
 * Starts a worker's attempt at a task in one step when nothing stands in its way: the record is the
 * submitter's (tenant and principal as the job says), `submitted` or `working`, with no cancel asked
 * for, no human's answer and no approval to wait for. Then it counts the attempt, moves the task to
 * `working` with this worker, appends and publishes the event (with `attempt`), and returns
 * {1, the record as it was, cursor, attempt}. Otherwise it changes nothing and returns {0, the
 * record} ({0} when there is none), for the worker to decide from the record.
 */
const BEGIN = `
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {0} end
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
local st = f['status']
if f['mode'] ~= 'async' or (st ~= 'submitted' and st ~= 'working') or f['cancelRequested'] == '1'
  or f['response'] or (f['approvalId'] and f['approvalId'] ~= '')
  or f['tenant'] ~= ARGV[3] or f['principal'] ~= ARGV[4] then return {0, h} end
local attempt = (tonumber(f['attempts']) or 0) + 1
redis.call('HSET', KEYS[1], 'status', 'working', 'worker', ARGV[1], 'startedAt', ARGV[2], 'attempts', attempt, 'updatedAt', ARGV[2])
local frame = ARGV[5] .. ',"attempt":' .. attempt .. '}'
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', '${MAX_TASK_EVENTS}', '*', 'e', frame)
if f['retentionMs'] then
  redis.call('PEXPIRE', KEYS[1], f['retentionMs'])
  redis.call('PEXPIRE', KEYS[2], f['retentionMs'])
end
local msg = '{"cursor":"' .. id .. '",' .. string.sub(frame, 2)
local n = tonumber(ARGV[6])
for i = 1, n do redis.call('PUBLISH', ARGV[6 + i], msg) end
if f['watched'] then redis.call('PUBLISH', ARGV[7 + n], msg) end
return {1, h, id, attempt}
`;

const TRANSITION_SCRIPT = new LuaScript('task-transition', 2, TRANSITION);
const CREATE_SCRIPT = new LuaScript('task-create', 2, CREATE);
const BEGIN_SCRIPT = new LuaScript('task-begin', 2, BEGIN);

/** Who a job's task belongs to, as the job carries it (the record's channels are named from it). */
export interface TaskOwner {
  taskId: string;
  tenant: string;
  principal: string;
}

/** What {@link TaskLedger.begin} found and did. */
export interface BegunAttempt {
  /** The record, as it is now; undefined when there is none. */
  task: LedgerTask | undefined;
  /** The attempt now started; undefined when the record needs the worker's decision first. */
  attempt?: number;
}

/** The digest naming a principal's event channel. */
export function principalDigest(tenant: string, principal: string): string {
  const key = `${tenant}\n${principal}`;
  let digest = digests.get(key);
  if (digest === undefined) {
    digest = createHash('sha256').update(key).digest('hex').slice(0, 32);
    // A bounded memo: a process sees a few principals' events over and over.
    if (digests.size >= DIGESTS_MAX) digests.clear();
    digests.set(key, digest);
  }
  return digest;
}

const DIGESTS_MAX = 10_000;
const digests = new Map<string, string>();

/**
 * The task ledger: one Redis hash per async task with its whole state, a capped stream of its
 * events (status changes and progress, each with a cursor), and per-tenant indexes by status.
 * Every change is one atomic script: check the allowed previous status, write the fields, append
 * the event, and publish it to the submitter's and the task's channels. Nothing that must survive
 * relies on pub/sub alone: a client that missed events reads them from the stream after its cursor.
 *
 * The record's fields and public view are in `ledger-record.ts`; the indexes by status in
 * `task-status-index.ts`; idempotency keys in `async-idempotency-keys.ts`.
 */
export class TaskLedger {
  private readonly redis: RedisClient;
  private readonly index: TaskStatusIndex;
  private readonly idempotency: AsyncIdempotencyKeys;

  constructor(
    redis: RedisClient,
    readonly keys: RedisKeys,
  ) {
    this.redis = redis;
    this.index = new TaskStatusIndex(redis, keys);
    this.idempotency = new AsyncIdempotencyKeys(redis, keys, async (taskId) => (await this.get(taskId)) !== undefined);
  }

  /** Writes the record of a new task (status `submitted`) and its first event, in one step. */
  async create(task: LedgerTask): Promise<void> {
    const frame = {
      event: 'task.status',
      taskId: task.taskId,
      status: task.status,
      // The first event names the task, so a watcher that sees it first needs no lookup.
      agent: task.agent,
      task: task.task,
      kind: task.kind,
      submittedBy: task.principal,
      ...(task.parentId === undefined ? {} : { parentId: task.parentId }),
    };
    const channels = this.channels(task, task.status, frame.event, false);
    const args: (string | number)[] = [
      this.keys.task(task.taskId),
      this.keys.taskEvents(task.taskId),
      task.retentionMs,
      JSON.stringify(frame),
      channels.length,
      ...channels,
    ];
    for (const [name, value] of Object.entries(encodeLedgerTask(task))) args.push(name, value);
    await this.guard(() => CREATE_SCRIPT.run<string>(this.redis, ...args));
    this.index.move(task.tenant, task.taskId, undefined, task.status, Date.now(), task.retentionMs);
  }

  /**
   * Starts a worker's attempt at a task in one round trip: reads the record and, when nothing stands
   * in the way (a cancel, a human's answer, an approval, a finished task), counts the attempt and
   * moves the task to `working` with its event. A task whose record needs a decision first is
   * returned as it is, unchanged.
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
   */
  async begin(owner: TaskOwner, workerId: string): Promise<BegunAttempt> {
    const now = Date.now();
    const frame = JSON.stringify({ event: 'task.status', taskId: owner.taskId, status: 'working' });
    const channels = this.channels(owner, 'working', 'task.status', false);
    const [started, flat, , attempt] = await this.guard(() =>
      BEGIN_SCRIPT.run<[number, string[]?, string?, number?]>(
        this.redis,
        this.keys.task(owner.taskId),
        this.keys.taskEvents(owner.taskId),
        workerId,
        now,
        owner.tenant,
        owner.principal,
        frame.slice(0, -1),
        channels.length,
        ...channels,
        this.keys.taskChannel(owner.taskId),
      ),
    );
    const fields: Record<string, string> = {};
    for (let i = 0; flat !== undefined && i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
    const task = decodeLedgerTask(fields);
    if (started !== 1 || task === undefined || attempt === undefined) return { task };
    const previous = task.status;
    Object.assign(task, { status: 'working', worker: workerId, startedAt: now, updatedAt: now, attempts: attempt });
    if (previous !== 'working') this.index.move(task.tenant, task.taskId, previous, 'working', now, task.retentionMs);
    return { task, attempt };
  }

  /**
   * Records a change atomically (see {@link Transition}), appends its event and publishes it.
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
   */
  async transition(
    task: Pick<LedgerTask, 'taskId' | 'tenant' | 'principal' | 'retentionMs'>,
    change: Transition,
  ): Promise<TransitionResult> {
    const now = Date.now();
    const frame: Record<string, unknown> = {
      event: change.eventName ?? 'task.status',
      taskId: task.taskId,
      ...(change.status === undefined ? {} : { status: change.status }),
      ...change.event,
    };
    const channels = this.channels(task, change.status, frame.event as string, change.notifyOperators === true);
    const args: (string | number)[] = [
      this.keys.task(task.taskId),
      this.keys.taskEvents(task.taskId),
      change.status ?? '',
      now,
      JSON.stringify(frame),
      task.retentionMs,
      change.from === 'any' ? '*' : (change.from ?? []).join(','),
      change.whileAttempt === undefined ? '' : String(change.whileAttempt),
      change.whileField?.name ?? '',
      change.whileField?.value ?? '',
      channels.length,
      ...channels,
    ];
    for (const [name, value] of Object.entries(change.fields ?? {})) args.push(name, value ?? '');
    args.push(this.keys.taskChannel(task.taskId));
    const [applied, previous, cursor] = await this.guard(() =>
      TRANSITION_SCRIPT.run<[number, string, string?]>(this.redis, ...args),
    );
    const result: TransitionResult = { applied: applied === 1, previous: (previous || undefined) as TaskState };
    if (cursor !== undefined) result.cursor = cursor;
    if (result.applied && change.status !== undefined && previous !== change.status) {
      // The index is secondary (listings check each record's status): written at the end of the turn.
      this.index.move(task.tenant, task.taskId, previous as TaskState, change.status, now, task.retentionMs);
    }
    return result;
  }

  /**
   * Where a task's event is published: its submitter's channel; the tenant's operators' when a human
   * is needed; and for a change of status, the tenant's activity channel, which only replicas with a
   * `tasks.watch` connection subscribe to (a publish nobody listens to costs Redis little).
   */
  private channels(
    task: Pick<LedgerTask, 'tenant' | 'principal'>,
    status: TaskState | undefined,
    event: string,
    notifyOperators: boolean,
  ): string[] {
    const channels = [this.keys.principalEvents(principalDigest(task.tenant, task.principal))];
    if (notifyOperators) channels.push(this.keys.operatorEvents(task.tenant));
    if (status !== undefined && event === 'task.status') channels.push(this.keys.taskActivity(task.tenant));
    return channels;
  }

  /** Sets fields without an event (bookkeeping a client need not see). */
  async setFields(taskId: string, fields: Record<string, string | undefined>): Promise<void> {
    const key = this.keys.task(taskId);
    const set: Record<string, string> = {};
    const del: string[] = [];
    for (const [name, value] of Object.entries(fields)) {
      if (value === undefined) del.push(name);
      else set[name] = value;
    }
    await this.guard(async () => {
      const multi = this.redis.multi();
      if (Object.keys(set).length > 0) multi.hset(key, set);
      if (del.length > 0) multi.hdel(key, ...del);
      await multi.exec();
    });
  }

  /**
   * Marks a task as watched by someone other than its submitter: its events are published on its
   * own channel from now on (the submitter's channel carries them anyway). The watcher subscribes to
   * that channel first and reads the stream after this, so no event falls between the two.
   */
  async markWatched(taskId: string): Promise<void> {
    await this.guard(() => this.redis.hset(this.keys.task(taskId), 'watched', '1'));
  }

  /** Whether someone asked to cancel the task (one field, not the whole record). */
  async cancelRequested(taskId: string): Promise<boolean> {
    return (await this.guard(() => this.redis.hget(this.keys.task(taskId), 'cancelRequested'))) === '1';
  }

  /**
   * Reads a record; `undefined` when there is none or it is not an async task.
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
   */
  async get(taskId: string): Promise<LedgerTask | undefined> {
    const h = await this.guard(() => this.redis.hgetall(this.keys.task(taskId)));
    return decodeLedgerTask(h);
  }

  /** Reads many records at once (missing ones are left out). */
  async getMany(taskIds: readonly string[]): Promise<LedgerTask[]> {
    if (taskIds.length === 0) return [];
    // One command per record, not one pipeline: records live in their own slots (on Redis Cluster, on
    // several nodes); auto-pipelining still sends the reads of one turn together, per node.
    const results = await this.guard(() =>
      Promise.all(taskIds.map((id) => this.redis.hgetall(this.keys.task(id)).catch(() => undefined))),
    );
    const out: LedgerTask[] = [];
    for (const h of results) {
      const task = h === undefined ? undefined : decodeLedgerTask(h);
      if (task) out.push(task);
    }
    return out;
  }

  /**
   * The newest tasks of a tenant in a status (most recent change first). Index entries of tasks
   * whose records expired are dropped on the way.
   */
  async list(tenant: string, status: TaskState, limit: number): Promise<LedgerTask[]> {
    const ids = await this.guard(() => this.index.newest(tenant, status, limit));
    // (Records past their retention are gone; their ids are dropped below.)
    const tasks = await this.getMany(ids);
    const found = new Set(tasks.map((t) => t.taskId));
    this.index.forget(
      tenant,
      status,
      ids.filter((id) => !found.has(id)),
    );
    return tasks.filter((t) => t.status === status);
  }

  /** A task's events after a cursor (all kept ones without), oldest first. */
  async events(taskId: string, after?: string, count = MAX_TASK_EVENTS): Promise<StoredTaskEvent[]> {
    const start = after === undefined || after === '' ? '-' : `(${after}`;
    const entries = await this.guard(() => this.redis.xrange(this.keys.taskEvents(taskId), start, '+', 'COUNT', count));
    const out: StoredTaskEvent[] = [];
    for (const [cursor, fields] of entries) {
      const json = fields[fields.indexOf('e') + 1];
      if (json === undefined) continue;
      try {
        out.push({ cursor, frame: { ...(JSON.parse(json) as Record<string, unknown>), cursor } });
      } catch {
        // A corrupt entry: skip it rather than fail the whole replay.
      }
    }
    return out;
  }

  /**
   * Claims a tenant's idempotency key for a new task.
   * @returns the id of the task the key already stands for, or undefined if this one claimed it.
   */
  async claimIdempotencyKey(
    tenant: string,
    key: string,
    taskId: string,
    windowMs: number,
  ): Promise<string | undefined> {
    return this.guard(() => this.idempotency.claim(tenant, key, taskId, windowMs));
  }

  /**
   * Frees a tenant's idempotency key if it still stands for `taskId` (a task that was never queued),
   * so that the key can be claimed again.
   * @returns whether the key was released.
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
   */
  async releaseIdempotencyKey(tenant: string, key: string, taskId: string): Promise<boolean> {
    return this.guard(() => this.idempotency.release(tenant, key, taskId));
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw new GatewayError('UNAVAILABLE', 'the task ledger (Redis) is unavailable; retry shortly', { cause: error });
    }
  }
}
