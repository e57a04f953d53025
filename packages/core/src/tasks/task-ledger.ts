import { createHash } from 'node:crypto';
import {
  GatewayError,
  type TaskOrigin,
  type TaskRecord,
  type TaskState,
  type TaskWait,
  TERMINAL_TASK_STATES,
  type WireError,
} from '@openclaw/protocol';
import type Redis from 'ioredis';
import type { PrincipalGrants } from '../auth/principal';
import { MAX_STORED_OUTPUT_BYTES } from '../config/limits';
import type { RedisKeys } from '../redis/redis-keys';

/** Events kept per task (approximately: the stream is trimmed with `MAXLEN ~`). */
export const MAX_TASK_EVENTS = 1000;

/** One index write in this many also trims the index of entries past the retention. */
const INDEX_TRIM_EVERY = 64;

/** What an async task is: one agent call, or a workflow whose steps are child tasks. */
export type TaskKind = 'task' | 'workflow';

/** An operator's answer to a task waiting in `input-required`. */
export interface TaskResponse {
  output: unknown;
  by: string;
  at: number;
}

/** The ledger record of an async task: everything a worker needs to run it, and its history. */
export interface LedgerTask {
  taskId: string;
  kind: TaskKind;
  agent: string;
  task: string;
  status: TaskState;
  createdAt: number;
  updatedAt: number;
  /** Who submitted it. Only they (or an operator with `task:read:any`) may read it. */
  principal: string;
  tenant: string;
  from: TaskOrigin;
  /** The submitter's roles, and for a delegated call its depth (what governance judges by). */
  roles: string[];
  delegationDepth?: number;
  /** The input: the data of a task, the input of a workflow. */
  data: unknown;
  /** Deadline of one attempt. */
  timeoutMs: number;
  maxAttempts: number;
  backoffMs: number;
  /** Attempts started so far (a worker killed mid-attempt counts: the next one is told `attempt` 2). */
  attempts: number;
  /** The worker running it now. */
  worker?: string;
  parentId?: string;
  stepId?: string;
  cancelRequested: boolean;
  /** Why a human is needed (in `input-required`). */
  question?: unknown;
  /** The approval the task's message needs (it waits in `input-required` until it is decided). */
  approvalId?: string;
  /** A workflow in `input-required`: what it waits for (its waiting steps' tasks, or itself). */
  waiting?: TaskWait[];
  response?: TaskResponse;
  /** How long to wait for a human before giving up. */
  escalationTimeoutMs: number;
  /** When the current wait for a human ends. */
  escalateUntil?: number;
  /** What to do when no human answers in time. */
  escalationOnTimeout: 'fail' | 'continue';
  lastError?: WireError;
  output?: unknown;
  error?: WireError;
  startedAt?: number;
  endedAt?: number;
  /** Workflows: the definition, the run state, the absolute deadline. */
  definition?: unknown;
  state?: unknown;
  deadline?: number;
  /** Workflows with plan steps: the starter's own grants, to authorize planned steps as the starter. */
  grants?: PrincipalGrants;
  /** Workflows: the cluster's defaults for steps that give no timeout or retries, fixed at start. */
  stepDefaults?: { attempts: number; backoffMs: number; timeoutMs: number };
  retentionMs: number;
  traceparent?: string;
}

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
 * count n, n channels, then field/value pairs (an empty value deletes the field).
 * Returns {applied (0/1), previous status, cursor}.
 */
const TRANSITION = `
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {0, ''} end
local allowed = ARGV[5]
if allowed == '' then
  if cur == 'completed' or cur == 'failed' or cur == 'canceled' or cur == 'rejected' then return {0, cur} end
elseif allowed ~= '*' then
  if not string.find(',' .. allowed .. ',', ',' .. cur .. ',', 1, true) then return {0, cur} end
end
if ARGV[6] ~= '' and redis.call('HGET', KEYS[1], 'attempts') ~= ARGV[6] then return {0, cur} end
if ARGV[7] ~= '' and redis.call('HGET', KEYS[1], ARGV[7]) ~= ARGV[8] then return {0, cur} end
local n = tonumber(ARGV[9])
local set = {}
for i = 10 + n, #ARGV, 2 do
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
return {1, cur, id}
`;

/** KEYS: idempotency key. ARGV: task id. Deletes the key only if it still stands for that task. */
const RELEASE_KEY = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

interface LedgerRedis extends Redis {
  ocTaskTransition(...args: (string | number)[]): Promise<[number, string, string?]>;
  ocReleaseIdempotencyKey(key: string, taskId: string): Promise<number>;
}

/** The digest naming a principal's event channel. */
export function principalDigest(tenant: string, principal: string): string {
  return createHash('sha256').update(`${tenant}\n${principal}`).digest('hex').slice(0, 32);
}

/**
 * The task ledger: one Redis hash per async task with its whole state, a capped stream of its
 * events (status changes and progress, each with a cursor), and per-tenant indexes by status.
 * Every change is one atomic script: check the allowed previous status, write the fields, append
 * the event, and publish it to the submitter's and the task's channels. Nothing that must survive
 * relies on pub/sub alone: a client that missed events reads them from the stream after its cursor.
 */
export class TaskLedger {
  private readonly redis: LedgerRedis;
  private indexWrites = 0;

  constructor(
    redis: Redis,
    readonly keys: RedisKeys,
  ) {
    this.redis = redis as LedgerRedis;
    if (typeof this.redis.ocTaskTransition !== 'function') {
      this.redis.defineCommand('ocTaskTransition', { numberOfKeys: 2, lua: TRANSITION });
    }
    if (typeof this.redis.ocReleaseIdempotencyKey !== 'function') {
      this.redis.defineCommand('ocReleaseIdempotencyKey', { numberOfKeys: 1, lua: RELEASE_KEY });
    }
  }

  /** Writes the record of a new task (status `submitted`) and its first event. */
  async create(task: LedgerTask): Promise<void> {
    const key = this.keys.task(task.taskId);
    const fields = encode(task);
    // One connection keeps the order of its commands: the record is written before the transition
    // reads it, without waiting for one round trip before starting the next.
    const written = this.guard(async () => {
      await this.redis.multi().hset(key, fields).pexpire(key, task.retentionMs).exec();
    });
    const announced = this.transition(task, {
      status: task.status,
      from: [task.status],
      // The first event names the task, so a watcher that sees it first needs no lookup.
      event: {
        agent: task.agent,
        task: task.task,
        kind: task.kind,
        submittedBy: task.principal,
        ...(task.parentId === undefined ? {} : { parentId: task.parentId }),
      },
    });
    await Promise.all([written, announced]);
    void this.index(task.tenant, task.taskId, undefined, task.status, Date.now(), task.retentionMs).catch(
      () => undefined,
    );
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
    const channels = [
      this.keys.principalEvents(principalDigest(task.tenant, task.principal)),
      this.keys.taskChannel(task.taskId),
    ];
    if (change.notifyOperators) channels.push(this.keys.operatorEvents(task.tenant));
    // Status changes (not progress) also go to the tenant's activity channel, which only replicas
    // with a `tasks.watch` connection subscribe to: a publish nobody listens to costs Redis little.
    if (change.status !== undefined && frame.event === 'task.status')
      channels.push(this.keys.taskActivity(task.tenant));
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
    const [applied, previous, cursor] = await this.guard(() => this.redis.ocTaskTransition(...args));
    const result: TransitionResult = { applied: applied === 1, previous: (previous || undefined) as TaskState };
    if (cursor !== undefined) result.cursor = cursor;
    if (result.applied && change.status !== undefined && previous !== change.status) {
      // The index is secondary (listings check each record's status): off the caller's path. Writes
      // on one connection keep their order, so two quick changes land in order.
      void this.index(task.tenant, task.taskId, previous as TaskState, change.status, now, task.retentionMs).catch(
        () => undefined,
      );
    }
    return result;
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
    return decode(h);
  }

  /** Reads many records at once (missing ones are left out). */
  async getMany(taskIds: readonly string[]): Promise<LedgerTask[]> {
    if (taskIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of taskIds) pipeline.hgetall(this.keys.task(id));
    const results = await this.guard(() => pipeline.exec());
    const out: LedgerTask[] = [];
    for (const [error, h] of results ?? []) {
      const task = error ? undefined : decode(h as Record<string, string>);
      if (task) out.push(task);
    }
    return out;
  }

  /**
   * The newest tasks of a tenant in a status (most recent change first). Index entries of tasks
   * whose records expired are dropped on the way.
   */
  async list(tenant: string, status: TaskState, limit: number): Promise<LedgerTask[]> {
    const index = this.keys.taskIndex(tenant, status);
    const ids = await this.guard(() => this.redis.zrevrange(index, 0, limit - 1));
    // (Records past their retention are gone; their ids are dropped below.)
    const tasks = await this.getMany(ids);
    const found = new Set(tasks.map((t) => t.taskId));
    const stale = ids.filter((id) => !found.has(id));
    if (stale.length > 0) void this.redis.zrem(index, ...stale).catch(() => undefined);
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
    const redisKey = this.idempotencyKey(tenant, key);
    for (let i = 0; i < 3; i++) {
      const claimed = await this.guard(() => this.redis.set(redisKey, taskId, 'PX', windowMs, 'NX'));
      if (claimed === 'OK') return undefined;
      const existing = await this.guard(() => this.redis.get(redisKey));
      if (existing !== null) {
        if (await this.get(existing)) return existing;
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
   * Frees a tenant's idempotency key if it still stands for `taskId` (a task that was never queued),
   * so that the key can be claimed again.
   * @returns whether the key was released.
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
   */
  async releaseIdempotencyKey(tenant: string, key: string, taskId: string): Promise<boolean> {
    const redisKey = this.idempotencyKey(tenant, key);
    return (await this.guard(() => this.redis.ocReleaseIdempotencyKey(redisKey, taskId))) === 1;
  }

  private idempotencyKey(tenant: string, key: string): string {
    const digest = createHash('sha256').update(`${tenant}\n${key}`).digest('hex').slice(0, 32);
    return this.keys.asyncIdempotency(digest);
  }

  private async index(
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
    this.indexWrites = (this.indexWrites + 1) % INDEX_TRIM_EVERY;
    if (this.indexWrites === 0) {
      multi.zremrangebyscore(index, '-inf', now - retentionMs);
      multi.pexpire(index, retentionMs);
    }
    await multi.exec();
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

/** JSON of an output if it is small enough to keep, else undefined. */
export function storableJson(value: unknown): string | undefined {
  const json = JSON.stringify(value ?? null);
  return Buffer.byteLength(json) <= MAX_STORED_OUTPUT_BYTES ? json : undefined;
}

function encode(task: LedgerTask): Record<string, string> {
  const out: Record<string, string> = {
    taskId: task.taskId,
    mode: 'async',
    kind: task.kind,
    agent: task.agent,
    task: task.task,
    status: task.status,
    createdAt: String(task.createdAt),
    updatedAt: String(task.updatedAt),
    principal: task.principal,
    tenant: task.tenant,
    origin: '',
    from: JSON.stringify(task.from),
    roles: JSON.stringify(task.roles),
    data: JSON.stringify(task.data ?? null),
    timeoutMs: String(task.timeoutMs),
    maxAttempts: String(task.maxAttempts),
    backoffMs: String(task.backoffMs),
    attempts: String(task.attempts),
    escalationTimeoutMs: String(task.escalationTimeoutMs),
    escalationOnTimeout: task.escalationOnTimeout,
    retentionMs: String(task.retentionMs),
  };
  if (task.parentId !== undefined) out.parentId = task.parentId;
  if (task.delegationDepth !== undefined) out.delegationDepth = String(task.delegationDepth);
  if (task.stepId !== undefined) out.stepId = task.stepId;
  if (task.definition !== undefined) out.definition = JSON.stringify(task.definition);
  if (task.state !== undefined) out.state = JSON.stringify(task.state);
  if (task.deadline !== undefined) out.deadline = String(task.deadline);
  if (task.stepDefaults !== undefined) out.stepDefaults = JSON.stringify(task.stepDefaults);
  if (task.grants !== undefined) out.grants = JSON.stringify(task.grants);
  if (task.traceparent !== undefined) out.traceparent = task.traceparent;
  return out;
}

function json<T>(text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

function num(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

function decode(h: Record<string, string>): LedgerTask | undefined {
  if (h.taskId === undefined || h.mode !== 'async') return undefined;
  const task: LedgerTask = {
    taskId: h.taskId,
    kind: h.kind === 'workflow' ? 'workflow' : 'task',
    agent: h.agent ?? '',
    task: h.task ?? '',
    status: (h.status ?? 'submitted') as TaskState,
    createdAt: num(h.createdAt) ?? 0,
    updatedAt: num(h.updatedAt) ?? 0,
    principal: h.principal ?? '',
    tenant: h.tenant ?? '',
    from: json<TaskOrigin>(h.from) ?? { principal: h.principal ?? '' },
    roles: json<string[]>(h.roles) ?? [],
    data: json(h.data) ?? null,
    timeoutMs: num(h.timeoutMs) ?? 30_000,
    maxAttempts: num(h.maxAttempts) ?? 1,
    backoffMs: num(h.backoffMs) ?? 1000,
    attempts: num(h.attempts) ?? 0,
    cancelRequested: h.cancelRequested === '1',
    escalationTimeoutMs: num(h.escalationTimeoutMs) ?? 86_400_000,
    escalationOnTimeout: h.escalationOnTimeout === 'continue' ? 'continue' : 'fail',
    retentionMs: num(h.retentionMs) ?? 604_800_000,
  };
  const optional: Partial<LedgerTask> = {
    worker: h.worker || undefined,
    parentId: h.parentId,
    stepId: h.stepId,
    question: json(h.question),
    approvalId: h.approvalId || undefined,
    waiting: json<TaskWait[]>(h.waiting),
    response: json<TaskResponse>(h.response),
    escalateUntil: num(h.escalateUntil),
    lastError: json<WireError>(h.lastError),
    output: h.output === undefined ? undefined : json(h.output),
    error: json<WireError>(h.error),
    startedAt: num(h.startedAt),
    endedAt: num(h.endedAt),
    definition: json(h.definition),
    state: json(h.state),
    deadline: num(h.deadline),
    stepDefaults: json(h.stepDefaults),
    grants: json<PrincipalGrants>(h.grants),
    delegationDepth: num(h.delegationDepth),
    traceparent: h.traceparent,
  };
  for (const [name, value] of Object.entries(optional)) {
    if (value !== undefined) (task as unknown as Record<string, unknown>)[name] = value;
  }
  return task;
}

/** Whether a status is terminal. */
export function isTerminal(status: TaskState | undefined): boolean {
  return status !== undefined && TERMINAL_TASK_STATES.has(status);
}

/** The public record of an async task, as `task.get` returns it. */
export function publicLedgerRecord(task: LedgerTask): TaskRecord {
  const record: TaskRecord = {
    taskId: task.taskId,
    agent: task.agent,
    task: task.task,
    status: task.status,
    createdAt: task.createdAt,
    updatedAt: task.updatedAt,
    mode: 'async',
    kind: task.kind,
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    submittedBy: task.principal,
  };
  const optional: Record<string, unknown> = {
    output: task.output,
    error: task.error,
    lastError: task.status === 'failed' ? undefined : task.lastError,
    parentId: task.parentId,
    stepId: task.stepId,
    question: task.status === 'input-required' ? task.question : undefined,
    escalateUntil: task.status === 'input-required' ? task.escalateUntil : undefined,
    approvalId: task.status === 'input-required' ? task.approvalId : undefined,
    waiting: task.status === 'input-required' ? task.waiting : undefined,
    response: task.response,
    startedAt: task.startedAt,
    endedAt: task.endedAt,
    deadline: task.deadline,
    traceId: traceIdOf(task.traceparent),
  };
  for (const [name, value] of Object.entries(optional)) {
    if (value !== undefined) (record as Record<string, unknown>)[name] = value;
  }
  return record;
}

/** The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`), if it is one. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  const match =
    traceparent === undefined ? null : /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent);
  return match?.[1] === undefined || /^0+$/.test(match[1]) ? undefined : match[1];
}
