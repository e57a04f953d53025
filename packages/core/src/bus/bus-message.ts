import { AgentErrorSchema, TaskOriginSchema, WireErrorSchema } from '@openclaw/protocol';
import { z } from 'zod';

/** Fields every bus envelope carries. */
const EnvelopeBase = {
  /** Message id, unique per message. */
  id: z.string().min(1).max(64),
  /** Replica that sent the message. */
  sender: z.string().min(1).max(64),
  /** When it was sent, epoch milliseconds. */
  ts: z.number().int(),
  /** W3C trace context of the hop. */
  traceparent: z.string().regex(/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/),
};

/** Origin to holder: deliver a task to an agent instance attached to the receiving replica. */
export const TaskDispatchMessageSchema = z.object({
  ...EnvelopeBase,
  type: z.literal('task.dispatch'),
  taskId: z.string(),
  instanceId: z.string(),
  task: z.string(),
  data: z.unknown(),
  from: TaskOriginSchema,
  deadline: z.number().int(),
  attempt: z.number().int().positive(),
  /** The memory thread of the conversation, if the call has one. */
  thread: z.string().optional(),
});

/** Holder to origin: the agent's result, error or progress for a task. */
export const TaskReplyMessageSchema = z.object({
  ...EnvelopeBase,
  type: z.literal('task.reply'),
  taskId: z.string(),
  instanceId: z.string(),
  outcome: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('result'), output: z.unknown() }),
    /** The agent reported an error. */
    z.object({ kind: z.literal('agent-error'), error: AgentErrorSchema }),
    /** The gateway could not deliver or complete it (e.g. the agent disconnected). */
    z.object({ kind: z.literal('failure'), error: WireErrorSchema }),
    z.object({ kind: z.literal('progress'), progress: z.unknown() }),
    /**
     * The holder did not give the task to the agent: the instance is at its concurrency (`busy`)
     * or no longer here (`gone`). The origin may route it to another instance.
     */
    z.object({ kind: z.literal('refused'), reason: z.enum(['busy', 'gone']) }),
  ]),
});

/** Origin to holder: the caller canceled or the deadline passed; tell the agent to stop. */
export const TaskAbortMessageSchema = z.object({
  ...EnvelopeBase,
  type: z.literal('task.abort'),
  taskId: z.string(),
  instanceId: z.string(),
  reason: z.enum(['canceled', 'deadline']),
});

/** Any replica to origin: a client asked to cancel a task that the origin holds the caller of. */
export const TaskCancelRequestMessageSchema = z.object({
  ...EnvelopeBase,
  type: z.literal('task.cancel-request'),
  taskId: z.string(),
});

/** Any replica to the replica of a call waiting for an approval: it changed (look at it in Redis). */
export const ApprovalChangedMessageSchema = z.object({
  ...EnvelopeBase,
  type: z.literal('approval.changed'),
  approvalId: z.string().min(1).max(64),
});

/** A replica or worker to all (broadcast): the agent registry changed; routing copies load it again. */
export const RegistryChangedMessageSchema = z.object({ ...EnvelopeBase, type: z.literal('registry.changed') });

/** A replica to itself: proves its subscriber still receives. */
export const CanaryMessageSchema = z.object({ ...EnvelopeBase, type: z.literal('canary') });

/** Every message that crosses the bus. */
export const BusMessageSchema = z.discriminatedUnion('type', [
  TaskDispatchMessageSchema,
  TaskReplyMessageSchema,
  TaskAbortMessageSchema,
  TaskCancelRequestMessageSchema,
  ApprovalChangedMessageSchema,
  RegistryChangedMessageSchema,
  CanaryMessageSchema,
]);

export type BusMessage = z.infer<typeof BusMessageSchema>;
export type TaskDispatchMessage = z.infer<typeof TaskDispatchMessageSchema>;
export type TaskReplyMessage = z.infer<typeof TaskReplyMessageSchema>;
export type TaskAbortMessage = z.infer<typeof TaskAbortMessageSchema>;
export type TaskCancelRequestMessage = z.infer<typeof TaskCancelRequestMessageSchema>;

/** A message before the bus stamps it with id, sender and time. */
export type OutgoingBusMessage = BusMessage extends infer M
  ? M extends BusMessage
    ? Omit<M, 'id' | 'sender' | 'ts' | 'traceparent'> & { traceparent?: string }
    : never
  : never;

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * Parses a bus message. The two that every call carries (a dispatch, and a reply with a result or
 * progress) are checked field by field without zod, the rest with {@link BusMessageSchema}; a message
 * the quick check does not accept is judged by the schema, so both accept the same messages.
 */
export function parseBusMessage(
  json: unknown,
): { success: true; data: BusMessage } | { success: false; error: string } {
  if (quickCheck(json)) return { success: true, data: json };
  const parsed = BusMessageSchema.safeParse(json);
  return parsed.success
    ? { success: true, data: parsed.data }
    : { success: false, error: parsed.error.issues[0]?.message ?? 'invalid' };
}

function quickCheck(m: unknown): m is BusMessage {
  if (typeof m !== 'object' || m === null) return false;
  const v = m as Record<string, unknown>;
  if (
    !shortString(v.id) ||
    !shortString(v.sender) ||
    !Number.isInteger(v.ts) ||
    typeof v.traceparent !== 'string' ||
    !TRACEPARENT.test(v.traceparent) ||
    typeof v.taskId !== 'string' ||
    typeof v.instanceId !== 'string'
  ) {
    return false;
  }
  if (v.type === 'task.reply') {
    const outcome = v.outcome as Record<string, unknown> | null | undefined;
    return (
      typeof outcome === 'object' &&
      outcome !== null &&
      ((outcome.kind === 'result' && 'output' in outcome) || (outcome.kind === 'progress' && 'progress' in outcome)) &&
      Object.keys(outcome).length === 2
    );
  }
  if (v.type === 'task.dispatch') {
    const from = v.from as Record<string, unknown> | null | undefined;
    return (
      typeof v.task === 'string' &&
      'data' in v &&
      Number.isInteger(v.deadline) &&
      Number.isInteger(v.attempt) &&
      (v.attempt as number) > 0 &&
      typeof from === 'object' &&
      from !== null &&
      typeof from.principal === 'string' &&
      // The origin's optional fields are left to the schema.
      Object.keys(from).length === 1
    );
  }
  return false;
}

function shortString(value: unknown): boolean {
  return typeof value === 'string' && value.length >= 1 && value.length <= 64;
}
