import { randomUUID } from 'node:crypto';
import type { LedgerTask } from '@openclaw/core';
import type { TaskState, WireError } from '@openclaw/protocol';
import { waitingFor } from './waiting-for';

/**
 * The A2A wire formats the gateway's A2A server speaks: version 1.0 (ProtoJSON: `TASK_STATE_*`,
 * `ROLE_*`, parts as `{text}` or `{data}`, stream events as `{task}`, `{statusUpdate}` or
 * `{artifactUpdate}`) and version 0.3 (`kind`-tagged objects, lower-case states, `final` on the
 * last status update). Pure translation: gateway tasks and events in, A2A objects out, and A2A
 * message parts in, task data out.
 */
export type A2aVersion = '1.0' | '0.3';

/** A2A JSON-RPC error codes (A2A 1.0, section 5.4; the same in 0.3). */
export const A2A_ERRORS = {
  parse: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internal: -32603,
  /** Any other refusal of the gateway (the error's `data` carries its code). */
  server: -32000,
  taskNotFound: -32001,
  taskNotCancelable: -32002,
  pushNotSupported: -32003,
  unsupportedOperation: -32004,
  contentTypeNotSupported: -32005,
  versionNotSupported: -32009,
} as const;

/** A part of a message or artifact, in whichever version's shape. */
type Part = Record<string, unknown>;

const V1_STATES: Record<TaskState, string> = {
  submitted: 'TASK_STATE_SUBMITTED',
  working: 'TASK_STATE_WORKING',
  'input-required': 'TASK_STATE_INPUT_REQUIRED',
  completed: 'TASK_STATE_COMPLETED',
  failed: 'TASK_STATE_FAILED',
  canceled: 'TASK_STATE_CANCELED',
  rejected: 'TASK_STATE_REJECTED',
};

/** The id of the one artifact a completed task has: its output. */
export function outputArtifactId(taskId: string): string {
  return `${taskId}:output`;
}

/** The A2A context of a gateway task: its memory thread (every A2A task is given one). */
export function contextOf(task: Pick<LedgerTask, 'taskId' | 'thread'>): string {
  return task.thread ?? task.taskId;
}

/** Translates gateway tasks and events into one A2A version's objects. */
export class A2aWire {
  constructor(readonly version: A2aVersion) {}

  state(status: TaskState): string {
    return this.version === '1.0' ? V1_STATES[status] : status;
  }

  /** A value as one part: a string as text, anything else as JSON data. */
  part(value: unknown): Part {
    if (this.version === '1.0') {
      return typeof value === 'string'
        ? { text: value, mediaType: 'text/plain' }
        : { data: value ?? null, mediaType: 'application/json' };
    }
    if (typeof value === 'string') return { kind: 'text', text: value };
    // 0.3 data parts hold objects: anything else is wrapped as the 1.0-to-0.3 translation does.
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return { kind: 'data', data: value };
    return { kind: 'data', data: { value: value ?? null }, metadata: { data_part_compat: true } };
  }

  /** A message of the agent's side, about a task. */
  message(taskId: string, contextId: string, parts: Part[]): Record<string, unknown> {
    const message = { messageId: randomUUID(), taskId, contextId, parts };
    return this.version === '1.0' ? { ...message, role: 'ROLE_AGENT' } : { kind: 'message', ...message, role: 'agent' };
  }

  /** What the gateway says about a task in its status: why it failed, what it waits for, its progress. */
  statusMessage(
    task: Pick<LedgerTask, 'taskId' | 'thread' | 'status' | 'error' | 'question' | 'approvalId'>,
  ): Record<string, unknown> | undefined {
    const context = contextOf(task);
    if (
      task.error !== undefined &&
      (task.status === 'failed' || task.status === 'rejected' || task.status === 'canceled')
    ) {
      return this.errorMessage(task.taskId, context, task.error);
    }
    if (task.status === 'input-required') return this.waitMessage(task.taskId, context, task.question, task.approvalId);
    return undefined;
  }

  errorMessage(taskId: string, contextId: string, error: WireError): Record<string, unknown> {
    return this.message(taskId, contextId, [this.part(`${error.code}: ${error.message}`), this.part({ error })]);
  }

  /** A task in `input-required`: the approval it waits for, or the question a human is asked. */
  waitMessage(
    taskId: string,
    contextId: string,
    question: unknown,
    approvalId: string | undefined,
  ): Record<string, unknown> {
    return this.message(taskId, contextId, [this.part(waitingFor(question, approvalId)), this.part(question ?? null)]);
  }

  /** A task's output as its artifact. */
  artifact(taskId: string, output: unknown): Record<string, unknown> {
    return { artifactId: outputArtifactId(taskId), name: 'output', parts: [this.part(output)] };
  }

  /** A gateway task as an A2A task. */
  task(task: LedgerTask): Record<string, unknown> {
    const status: Record<string, unknown> = {
      state: this.state(task.status),
      timestamp: new Date(task.updatedAt).toISOString(),
    };
    const said = this.statusMessage(task);
    if (said) status.message = said;
    const out: Record<string, unknown> = {
      id: task.taskId,
      contextId: contextOf(task),
      status,
      artifacts: task.status === 'completed' ? [this.artifact(task.taskId, task.output ?? null)] : [],
      history: [],
      metadata: { 'openclaw/agent': task.agent, 'openclaw/task': task.task },
    };
    return this.version === '1.0' ? out : { kind: 'task', ...out };
  }

  /** A stream event: the task as it is. */
  taskEvent(task: LedgerTask): Record<string, unknown> {
    const body = this.task(task);
    return this.version === '1.0' ? { task: body } : body;
  }

  /** A stream event: a status change (or progress, as a `working` status with a message). */
  statusEvent(
    taskId: string,
    contextId: string,
    status: TaskState,
    message: Record<string, unknown> | undefined,
    final: boolean,
  ): Record<string, unknown> {
    const update = {
      taskId,
      contextId,
      status: {
        state: this.state(status),
        ...(message ? { message } : {}),
        timestamp: new Date().toISOString(),
      },
    };
    return this.version === '1.0' ? { statusUpdate: update } : { kind: 'status-update', ...update, final };
  }

  /** A stream event: the task's output, in one chunk. */
  artifactEvent(taskId: string, contextId: string, output: unknown): Record<string, unknown> {
    const update = { taskId, contextId, artifact: this.artifact(taskId, output), append: false, lastChunk: true };
    return this.version === '1.0' ? { artifactUpdate: update } : { kind: 'artifact-update', ...update };
  }
}

/**
 * The task data an A2A message carries: one part's text or data as it is, several parts as a list.
 * @throws {Error} with the reason, for a message without parts or with a file part.
 */
export function dataOfParts(parts: unknown): unknown {
  if (!Array.isArray(parts) || parts.length === 0) throw new Error('message.parts must be a non-empty list');
  const values = parts.map((part, i) => {
    if (part === null || typeof part !== 'object') throw new Error(`message.parts[${i}] must be an object`);
    const p = part as Record<string, unknown>;
    if (typeof p.text === 'string') return p.text;
    if ('data' in p) {
      // A 0.3 client's wrapped value (a 1.0 data part that was not an object).
      const meta = p.metadata as Record<string, unknown> | undefined;
      const data = p.data as Record<string, unknown> | null;
      if (meta?.data_part_compat === true && data !== null && typeof data === 'object' && 'value' in data) {
        return data.value;
      }
      return p.data;
    }
    if ('url' in p || 'raw' in p || 'file' in p) {
      throw new Error(`message.parts[${i}] is a file: this agent takes text and data parts`);
    }
    throw new Error(`message.parts[${i}] has no text or data`);
  });
  return values.length === 1 ? values[0] : values;
}
