import { z } from 'zod';
import { AgentNameSchema, ApprovalIdSchema, TaskIdSchema, TaskStateSchema, WireErrorSchema } from './primitives';
import { PROTOCOL_VERSION } from './version';

/** Who a session acts as. */
export const PrincipalSchema = z.object({
  id: z.string(),
  tenant: z.string(),
  roles: z.array(z.string()),
});
export type PrincipalInfo = z.infer<typeof PrincipalSchema>;

export const HelloResultSchema = z.object({
  protocol: z.literal(PROTOCOL_VERSION),
  sessionId: z.string(),
  replica: z.string(),
  principal: PrincipalSchema,
  limits: z.object({
    maxFrameBytes: z.number().int(),
    /** Deepest nesting of a frame; absent from gateways older than this limit. */
    maxJsonDepth: z.number().int().optional(),
    heartbeatMs: z.number().int(),
  }),
  /** Protocol 1.1 features this gateway has: `state`, `memory` and `cache` (absent from a 1.0 gateway). */
  features: z.array(z.string()).optional(),
});
export type HelloResult = z.infer<typeof HelloResultSchema>;

export const RegisterResultSchema = z.object({ agent: AgentNameSchema, instanceId: z.string() });
export type RegisterResult = z.infer<typeof RegisterResultSchema>;

export const CoordinatorResultSchema = z.union([
  z.object({
    taskId: TaskIdSchema,
    status: z.literal('completed'),
    output: z.unknown(),
    /** Answered by the result cache (or an identical call in flight), not by the agent for this call. */
    cached: z.boolean().optional(),
  }),
  z.object({ taskId: TaskIdSchema, status: z.literal('submitted') }),
]);
export type CoordinatorResult = z.infer<typeof CoordinatorResultSchema>;

/**
 * What a task in `input-required` waits for: one entry per task a human must act on. For a workflow,
 * each is a waiting step's child task (or the workflow itself, when a failed step escalated by its
 * `onFailure: escalate` policy).
 */
export const TaskWaitSchema = z.object({
  /** The workflow step that waits (workflows only). */
  step: z.string().optional(),
  /** The task a human acts on, and for a parallel step its branch. */
  taskId: TaskIdSchema,
  branch: z.string().optional(),
  agent: z.string().optional(),
  /**
   * `answer`: someone with `task:respond` answers the task (`task.respond`; the workflow's id works
   * too); `approval`: the approval is decided with `approval.decide` by whom `required` names.
   */
  needs: z.enum(['answer', 'approval']),
  /** The permission that acts on it: `task:respond` or `approval:decide`. */
  permission: z.string(),
  /** What the human is told. */
  message: z.string().optional(),
  approvalId: ApprovalIdSchema.optional(),
  /** Who may decide the approval: how many approvers, with what role, or which principals. */
  required: z
    .object({ approvers: z.number().int(), role: z.string().optional(), principals: z.array(z.string()).optional() })
    .optional(),
  /** Since when it waits, and until when a human may act (then the escalation times out). */
  since: z.number().int(),
  until: z.number().int().optional(),
});
export type TaskWait = z.infer<typeof TaskWaitSchema>;

/** The record of a task, as `task.get` returns it. Times are epoch milliseconds. */
export const TaskRecordSchema = z.object({
  taskId: TaskIdSchema,
  /** The agent (empty for a workflow). */
  agent: z.string(),
  task: z.string(),
  status: TaskStateSchema,
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
  output: z.unknown().optional(),
  error: WireErrorSchema.optional(),
  /** Async tasks and workflows only, from here on. */
  mode: z.literal('async').optional(),
  kind: z.enum(['task', 'workflow']).optional(),
  /** Attempts started, and allowed in all. */
  attempts: z.number().int().nonnegative().optional(),
  maxAttempts: z.number().int().positive().optional(),
  /** The principal that submitted it. */
  submittedBy: z.string().optional(),
  /** The error of the last failed attempt, while retries remain. */
  lastError: WireErrorSchema.optional(),
  /** For a workflow step: the workflow's task id and the step's id. */
  parentId: TaskIdSchema.optional(),
  stepId: z.string().optional(),
  /** In `input-required`: what the human is asked, and until when. */
  question: z.unknown().optional(),
  /** In `input-required` for an approval: the approval it waits for (decide it with `approval.decide`). */
  approvalId: ApprovalIdSchema.optional(),
  escalateUntil: z.number().int().optional(),
  /** A workflow in `input-required`: which steps wait, for whom, since when. */
  waiting: z.array(TaskWaitSchema).optional(),
  /** The human's answer, once given. */
  response: z.object({ output: z.unknown(), by: z.string(), at: z.number().int() }).optional(),
  startedAt: z.number().int().optional(),
  /** The trace the task belongs to (W3C trace id), when it was traced or the submitter sent a `traceparent`. */
  traceId: z.string().optional(),
  endedAt: z.number().int().optional(),
  /** A workflow's absolute deadline. */
  deadline: z.number().int().optional(),
  /** A workflow's steps: status, child task ids, output or error of each. */
  steps: z.array(z.unknown()).optional(),
});
export type TaskRecord = z.infer<typeof TaskRecordSchema>;

export const TaskCancelResultSchema = z.object({ taskId: TaskIdSchema, status: z.literal('canceled') });

/** An approval, as `approval.list`, `approval.get` and `approval.decide` return it and its events carry. */
export const ApprovalRecordSchema = z.object({
  approvalId: ApprovalIdSchema,
  status: z.enum(['pending', 'approved', 'rejected', 'expired', 'consumed']),
  agent: z.string(),
  task: z.string(),
  /** `request` (on its way to the agent) or `response` (the agent's output on its way back). */
  direction: z.enum(['request', 'response']),
  /** The principal whose call it is. */
  requestedBy: z.string(),
  /** The validator that asked for approval, and why. */
  validator: z.string(),
  reason: z.string().optional(),
  /** How many must approve, and who may. */
  required: z.object({
    approvers: z.number().int().positive(),
    role: z.string().optional(),
    principals: z.array(z.string()).optional(),
  }),
  /** Approvals so far. */
  approvals: z.number().int().nonnegative(),
  decisions: z.array(
    z.object({
      principal: z.string(),
      decision: z.enum(['approve', 'reject']),
      reason: z.string().optional(),
      at: z.number().int(),
    }),
  ),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
  expiresAt: z.number().int(),
  decidedAt: z.number().int().optional(),
  consumedAt: z.number().int().optional(),
  /** The task of the message; `mode` says whether a caller waits (`sync`) or the task is parked (`async`). */
  taskId: TaskIdSchema,
  mode: z.enum(['sync', 'async']),
  /** SHA-256 of the message the approval is for (direction, tenant, caller, agent, task, data). */
  hash: z.string(),
  /** The payload that goes on once approved. */
  data: z.unknown(),
});
export type ApprovalRecord = z.infer<typeof ApprovalRecordSchema>;

export const ApprovalListResultSchema = z.array(ApprovalRecordSchema);

/** One agent in `agents.list`. */
export const AgentInfoSchema = z.object({
  name: AgentNameSchema,
  kind: z.enum(['ws', 'http']),
  /** Live instances (WebSocket agents); 0 for HTTP agents. */
  instances: z.number().int().nonnegative(),
  tasks: z.array(z.string()),
  /** Sum of the instances' concurrency (WebSocket agents). */
  capacity: z.number().int().nonnegative().optional(),
  /** Tasks in flight across all instances. */
  inFlight: z.number().int().nonnegative().optional(),
  /** The endpoint of an HTTP agent. */
  url: z.string().optional(),
});
export type AgentInfo = z.infer<typeof AgentInfoSchema>;
export const AgentsListResultSchema = z.array(AgentInfoSchema);

export const DelegateResultSchema = z.object({
  token: z.string(),
  expiresAt: z.number().int(),
  depth: z.number().int(),
  maxDepth: z.number().int(),
});
export type DelegateResult = z.infer<typeof DelegateResultSchema>;

export const PingResultSchema = z.object({ pong: z.literal(true), time: z.number().int() });

/** A key of shared state, as `state.get` answers it. */
export interface StateEntry<T = unknown> {
  namespace: string;
  key: string;
  value: T;
  version: number;
  updatedAt: number;
  expiresAt?: number;
}

/** A key in a `state.list` page. */
export interface StateListItem {
  key: string;
  version: number;
  updatedAt: number;
}

/** A namespace of a tenant's shared state, as `GET /v1/state` lists it. */
export interface NamespaceSummary {
  namespace: string;
  /** How many keys it holds now (expired keys not yet swept included). */
  keys: number;
  /** When it last went from empty to holding a key (ms). */
  since: number;
}

/** One agent's result cache, as `GET /v1/cache` reports it: its policy, entries and counters. */
export interface AgentCacheSummary {
  agent: string;
  /** Its cacheable tasks and their ttl, from its latest registration; absent when none. */
  policy?: { tasks: string[]; ttlMs: number };
  /** Outputs stored now (entries that expired but are still indexed included). */
  entries: number;
  /** Counters since the cluster began, over every process (written every couple of seconds). */
  hits: number;
  misses: number;
  shared: number;
  stored: number;
}

/** A change of a watched key, as the `state.changed` event tells it (less the event's name). */
export interface StateChange {
  namespace: string;
  key: string;
  version: number;
  op: 'set' | 'delete' | 'expire';
}

/** An entry to append to a memory thread. */
export interface MemoryEntryInput {
  role: string;
  content: unknown;
  meta?: Record<string, unknown>;
}

/** An entry of a memory thread, as `memory.read` answers it. */
export interface MemoryEntry extends MemoryEntryInput {
  seq: number;
  at: number;
}
