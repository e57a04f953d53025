import { z } from 'zod';
import { ApprovalIdSchema, RequestIdSchema, TaskIdSchema, TaskStateSchema, WireErrorSchema } from './primitives';
import { ApprovalRecordSchema } from './results';

/**
 * The envelope every client request shares: an action name and an optional id; the action's
 * parameters sit beside them at the top level of the same object.
 */
export const RequestEnvelopeSchema = z.looseObject({
  action: z.string().min(1).max(64),
  id: RequestIdSchema.optional(),
});
export type RequestEnvelope = z.infer<typeof RequestEnvelopeSchema>;

export const OkResponseSchema = z.object({
  id: RequestIdSchema.nullable(),
  ok: z.literal(true),
  result: z.unknown(),
});
export const ErrorResponseSchema = z.object({
  id: RequestIdSchema.nullable(),
  ok: z.literal(false),
  error: WireErrorSchema,
});
/** A response: exactly one per request. */
export const ResponseSchema = z.discriminatedUnion('ok', [OkResponseSchema, ErrorResponseSchema]);
export type OkResponse = z.infer<typeof OkResponseSchema>;
export type ErrorResponse = z.infer<typeof ErrorResponseSchema>;
export type Response = z.infer<typeof ResponseSchema>;

/** Who sent a task: the caller's principal, and the agent it acts as, if any. */
export const TaskOriginSchema = z.object({
  principal: z.string(),
  agent: z.string().optional(),
  /** The principal a delegated call is made for. */
  onBehalfOf: z.string().optional(),
  /** The delegation chain: the original principal, then each agent's principal that passed it on. */
  chain: z.array(z.string()).optional(),
  /** The agents the call came through, oldest first, the calling agent last (agent-to-agent calls). */
  agents: z.array(z.string()).optional(),
});

export type TaskOrigin = z.infer<typeof TaskOriginSchema>;

/** `task`: the gateway dispatches work to an agent instance. `deadline` is epoch milliseconds. */
export const TaskEventSchema = z.object({
  event: z.literal('task'),
  taskId: TaskIdSchema,
  /** The agent asked: which one, when the connection serves several (a 1.0 gateway leaves it out). */
  agent: z.string().optional(),
  task: z.string(),
  data: z.unknown(),
  from: TaskOriginSchema,
  deadline: z.number().int(),
  attempt: z.number().int().positive(),
  /** W3C trace context of the dispatch: an agent's own spans for the task can continue this trace. */
  traceparent: z.string().optional(),
  /** The memory thread of the conversation the call belongs to (`memory.read` it), when it has one. */
  thread: z.string().optional(),
});
export type TaskEvent = z.infer<typeof TaskEventSchema>;

/** `state.changed`: a key of a watched namespace was set, deleted or expired, on any replica. */
export const StateChangedEventSchema = z.object({
  event: z.literal('state.changed'),
  namespace: z.string(),
  key: z.string(),
  version: z.number().int(),
  op: z.enum(['set', 'delete', 'expire']),
});
export type StateChangedEvent = z.infer<typeof StateChangedEventSchema>;

/** `task.cancel`: the caller canceled a task the agent is working on. */
export const TaskCancelEventSchema = z.object({ event: z.literal('task.cancel'), taskId: TaskIdSchema });

/** `task.status`: a task changed state (async tasks, to their submitter). */
export const TaskStatusEventSchema = z.object({
  event: z.literal('task.status'),
  taskId: TaskIdSchema,
  status: TaskStateSchema,
  output: z.unknown().optional(),
  error: WireErrorSchema.optional(),
  /** Async tasks: the event's position in the task's event stream; `task.subscribe` resumes after it. */
  cursor: z.string().optional(),
  /** The attempt this status is about (async tasks). */
  attempt: z.number().int().positive().optional(),
  /** For a step of a workflow: the workflow's task id. */
  parentId: TaskIdSchema.optional(),
  /** In `input-required`: what the human is asked. */
  question: z.unknown().optional(),
  /** The first event of an async task (`submitted`) names it: its agent, task name, kind and submitter. */
  agent: z.string().optional(),
  task: z.string().optional(),
  kind: z.enum(['task', 'workflow']).optional(),
  submittedBy: z.string().optional(),
});

/** `task.progress`: progress an agent reported, forwarded to the caller. */
export const TaskProgressEventSchema = z.object({
  event: z.literal('task.progress'),
  /** For a sync call, the id of the caller's `coordinator` request (the caller learns the task id only at the end). */
  id: RequestIdSchema.nullable().optional(),
  taskId: TaskIdSchema,
  progress: z.unknown(),
  /** Async tasks: the event's position in the task's event stream. */
  cursor: z.string().optional(),
});

/**
 * `approval.required`: a sync `coordinator` call waits for an approval (to its caller, with the
 * request's `id`). The call ends when the approval is decided, expires, or the deadline comes.
 */
export const ApprovalRequiredEventSchema = z.object({
  event: z.literal('approval.required'),
  id: RequestIdSchema.nullable().optional(),
  taskId: TaskIdSchema,
  approvalId: ApprovalIdSchema,
  validator: z.string(),
  reason: z.string().optional(),
  expiresAt: z.number().int(),
  required: z.object({ approvers: z.number().int().positive(), role: z.string().optional() }).passthrough(),
});

/**
 * `approval.requested` and `approval.updated`: to connections of the tenant's principals that hold
 * `approval:read`, when a message is parked for approval and when an approval changes (a decision,
 * approved, rejected, expired, used). The frame carries the approval record's fields.
 */
export const ApprovalRequestedEventSchema = ApprovalRecordSchema.extend({ event: z.literal('approval.requested') });
export const ApprovalUpdatedEventSchema = ApprovalRecordSchema.extend({ event: z.literal('approval.updated') });

/**
 * `cluster.snapshot`: the cluster at a glance, every interval, to a connection that sent
 * `cluster.watch`: replicas (age, readiness, connections), request counters per replica, workers,
 * the tenant's agents, queue depths, pending approvals and Redis health.
 */
export const ClusterSnapshotEventSchema = z.looseObject({
  event: z.literal('cluster.snapshot'),
  at: z.number().int(),
  replicas: z.array(z.unknown()),
});

/** One validator's verdicts in a `cluster.snapshot`, summed over the live replicas and workers. */
export interface ValidatorSummary {
  validator: string;
  checks: number;
  allows: number;
  denies: number;
  redactions: number;
  approvals: number;
  wouldDeny: number;
  failures: number;
  overBudget: number;
  meanMs: number;
  maxMs: number;
}

/** Every event the gateway sends. */
export const EventSchema = z.discriminatedUnion('event', [
  TaskEventSchema,
  TaskCancelEventSchema,
  TaskStatusEventSchema,
  TaskProgressEventSchema,
  ApprovalRequiredEventSchema,
  ApprovalRequestedEventSchema,
  ApprovalUpdatedEventSchema,
  ClusterSnapshotEventSchema,
  StateChangedEventSchema,
]);
export type Event = z.infer<typeof EventSchema>;

/** Anything the gateway sends: a response (has `ok`) or an event (has `event`). */
export type ServerFrame = Response | Event;
