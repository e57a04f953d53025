import {
  type TaskOrigin,
  type TaskRecord,
  type TaskState,
  type TaskWait,
  TERMINAL_TASK_STATES,
  type WireError,
} from '@openclaw/protocol';
import type { PrincipalGrants } from '../auth/principal';
import { MAX_STORED_OUTPUT_BYTES } from '../config/limits';

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
  /** The memory thread of the conversation (a workflow's steps share it). */
  thread?: string;
}

/** JSON of an output if it is small enough to keep, else undefined. */
export function storableJson(value: unknown): string | undefined {
  const json = JSON.stringify(value ?? null);
  return Buffer.byteLength(json) <= MAX_STORED_OUTPUT_BYTES ? json : undefined;
}

/**
 * The fields of a new task's ledger hash.
 * @internal
 */
export function encodeLedgerTask(task: LedgerTask): Record<string, string> {
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
  if (task.thread !== undefined) out.thread = task.thread;
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

/**
 * The task a ledger hash holds; `undefined` when it holds none or not an async task.
 * @internal
 */
export function decodeLedgerTask(h: Record<string, string>): LedgerTask | undefined {
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
    thread: h.thread,
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

/** The queue options of a task, from its record. */
export function enqueueOptions(task: LedgerTask) {
  return {
    kind: task.kind,
    attempts: task.maxAttempts,
    backoffMs: task.backoffMs,
    retentionMs: task.retentionMs,
    tenant: task.tenant,
    principal: task.principal,
    traceparent: task.traceparent,
  };
}
