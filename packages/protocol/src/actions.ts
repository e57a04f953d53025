import { z } from 'zod';
import {
  AgentNameSchema,
  ApprovalIdSchema,
  NamespaceSchema,
  RequestIdSchema,
  StateKeySchema,
  TaskIdSchema,
  TaskNameSchema,
  TaskStateSchema,
} from './primitives';
import { EscalationPolicySchema, RetryPolicySchema, WorkflowDefinitionSchema } from './workflow';

/** `hello`: optional handshake; tells the client who it is and the limits in force. */
export const HelloParamsSchema = z.object({
  protocol: z.number().int().positive().optional(),
  client: z.object({ name: z.string().max(128), version: z.string().max(64) }).optional(),
});

/** The longest a result stays cached: one day. */
export const MAX_CACHE_TTL_MS = 86_400_000;

/** `register`: this connection becomes an instance of the named agent. */
export const RegisterParamsSchema = z.object({
  name: AgentNameSchema,
  tasks: z.array(TaskNameSchema).max(256).optional(),
  /** How many tasks this instance takes at once. Default 1. */
  concurrency: z.number().int().min(1).max(10_000).optional(),
  meta: z.record(z.string(), z.unknown()).optional(),
  /** The agent's default retries for async tasks (a call's own `retry` wins). */
  retry: RetryPolicySchema.optional(),
  /** A JSON Schema per task for its input: requests that do not match are refused before dispatch. */
  inputSchemas: z.record(TaskNameSchema, z.record(z.string(), z.unknown())).optional(),
  /** Tasks whose successful outputs the gateway may cache, for `ttlMs` (`"*"`: every task). */
  cache: z
    .object({
      tasks: z.array(z.union([TaskNameSchema, z.literal('*')])).max(256),
      ttlMs: z.number().int().min(1).max(MAX_CACHE_TTL_MS),
    })
    .strict()
    .optional(),
});

/** The largest deadline a caller may ask for: one hour. */
export const MAX_TIMEOUT_MS = 3_600_000;

/** `coordinator`: route a task to an agent and (in sync mode) wait for its output. */
export const CoordinatorParamsSchema = z.object({
  agent: AgentNameSchema,
  task: TaskNameSchema,
  data: z.unknown().optional(),
  timeoutMs: z.number().int().min(1).max(MAX_TIMEOUT_MS).optional(),
  mode: z.enum(['sync', 'async']).optional(),
  idempotencyKey: z.string().min(1).max(256).optional(),
  /** A delegation token: this call is made on behalf of the principal that minted it (see `delegate`). */
  delegation: z.string().min(1).max(8192).optional(),
  /** Async only: retries of retryable failures and timeouts (default: the agent's, else the cluster's). */
  retry: RetryPolicySchema.optional(),
  /** Async only: how long to wait for a human when the agent escalates (default: the cluster's). */
  escalation: EscalationPolicySchema.optional(),
  /**
   * For an agent calling another agent: the task it is working on, which this call is part of (for
   * the chain of agents that loop detection follows). Without it, the one task the connection holds.
   */
  parentTaskId: TaskIdSchema.optional(),
  /**
   * Sync only: an approval given for this very call (same caller, agent, task and data) after an
   * earlier attempt timed out waiting for it. It lets the call through once.
   */
  approvalId: ApprovalIdSchema.optional(),
  /** A memory thread of the conversation this call belongs to: the agent finds it in its `task` event. */
  thread: NamespaceSchema.optional(),
  /** `false`: not answered from the result cache (nor stored in it); the stored entry stays. */
  cache: z.boolean().optional(),
});

/**
 * `delegate`: mint a short-lived token with which `agent` may act for this principal, with a subset of
 * its permissions. With `parent` (a token this connection's agent was given), a narrower one for the
 * next agent in a chain.
 */
export const DelegateParamsSchema = z.object({
  agent: AgentNameSchema,
  permissions: z.array(z.string().min(1).max(256)).min(1).max(64),
  /** Lifetime; default 300 s, at most 3600 s (and never past the parent's expiry). */
  ttlSeconds: z.number().int().min(1).max(3600).optional(),
  /** How many agents deep the chain may go from the original principal; default 1, at most 5. */
  maxDepth: z.number().int().min(1).max(5).optional(),
  parent: z.string().min(1).max(8192).optional(),
  /**
   * The principal the agent connects as: only a connection of that principal may use the token.
   * Default: the principals of the agent's live instances when it is minted.
   */
  principal: z.string().min(1).max(256).optional(),
});

/** `task.get`: the record of a task. */
export const TaskGetParamsSchema = z.object({ taskId: TaskIdSchema });

/**
 * `task.cancel`: cancel a task that has not ended, by `taskId`, or by `requestId`: the id of a
 * `coordinator` request this same connection has in flight (a sync caller learns the task id only
 * from progress or the result).
 */
export const TaskCancelParamsSchema = z
  .object({ taskId: TaskIdSchema.optional(), requestId: RequestIdSchema.optional() })
  .refine((p) => (p.taskId === undefined) !== (p.requestId === undefined), {
    message: 'give exactly one of taskId and requestId',
    path: ['taskId'],
  });

/** `task.subscribe`: status and progress events of a task. */
export const TaskSubscribeParamsSchema = z.object({ taskId: TaskIdSchema, after: z.string().max(64).optional() });

/** `workflow.start`: run a workflow in the background; it is a task whose steps are child tasks. */
export const WorkflowStartParamsSchema = z.object({
  workflow: WorkflowDefinitionSchema,
  input: z.unknown().optional(),
  idempotencyKey: z.string().min(1).max(256).optional(),
  /** A memory thread: every step's agent finds it in its `task` event. */
  thread: NamespaceSchema.optional(),
});

/** `task.respond`: an operator's answer to a task waiting in `input-required`. */
export const TaskRespondParamsSchema = z.object({ taskId: TaskIdSchema, output: z.unknown() });

/** `task.retry`: run a failed (or canceled) async task again, from its first attempt. */
export const TaskRetryParamsSchema = z.object({ taskId: TaskIdSchema });

/** `task.list`: the tenant's async tasks in one status, newest change first. */
export const TaskListParamsSchema = z.object({
  status: TaskStateSchema.optional(),
  limit: z.number().int().min(1).max(1000).optional(),
});

/** Statuses of approvals, and `all`, for `approval.list`. */
export const ApprovalStatusSchema = z.enum(['pending', 'approved', 'rejected', 'expired', 'consumed']);

/** `approval.list`: the tenant's approvals; pending ones (soonest to expire first) unless told otherwise. */
export const ApprovalListParamsSchema = z.object({
  status: z.union([ApprovalStatusSchema, z.literal('all')]).optional(),
  limit: z.number().int().min(1).max(1000).optional(),
});

/** `approval.get`: one approval. */
export const ApprovalGetParamsSchema = z.object({ approvalId: ApprovalIdSchema });

/** `approval.decide`: approve or reject a pending approval, with a reason. */
export const ApprovalDecideParamsSchema = z.object({
  approvalId: ApprovalIdSchema,
  decision: z.enum(['approve', 'reject']),
  reason: z.string().max(1024).optional(),
});

/** `cluster.watch`: a `cluster.snapshot` event every `intervalMs` (default 2000) until `cluster.unwatch` or the connection closes. */
export const ClusterWatchParamsSchema = z.object({ intervalMs: z.number().int().min(1000).max(60_000).optional() });

/** `cluster.unwatch`: no parameters. */
export const ClusterUnwatchParamsSchema = z.object({});

/** `tasks.watch`: a `task.status` event for every status change of the tenant's async tasks, until `tasks.unwatch`. */
export const TasksWatchParamsSchema = z.object({});

/** `tasks.unwatch`: no parameters. */
export const TasksUnwatchParamsSchema = z.object({});

/** `agents.list`: no parameters. */
export const AgentsListParamsSchema = z.object({});

/** The longest time-to-live of a state key: one year. */
export const MAX_STATE_TTL_MS = 365 * 24 * 3_600_000;

/** `state.get`: one key of the tenant's shared state. */
export const StateGetParamsSchema = z.object({ namespace: NamespaceSchema, key: StateKeySchema });

/** `state.set`: writes a key; `ifVersion` makes it a compare-and-set (0: only if absent). */
export const StateSetParamsSchema = z
  .object({
    namespace: NamespaceSchema,
    key: StateKeySchema,
    value: z.unknown(),
    ttlMs: z.number().int().min(1).max(MAX_STATE_TTL_MS).optional(),
    ifVersion: z.number().int().min(0).optional(),
  })
  .refine((p) => p.value !== undefined, { message: 'a value is required (any JSON, null included)', path: ['value'] });

/** `state.delete`: removes a key; with `ifVersion`, only while that is its version. */
export const StateDeleteParamsSchema = z.object({
  namespace: NamespaceSchema,
  key: StateKeySchema,
  ifVersion: z.number().int().min(0).optional(),
});

/** `state.list`: the keys of a namespace, with a prefix, a page at a time. */
export const StateListParamsSchema = z.object({
  namespace: NamespaceSchema,
  prefix: z.string().max(512).optional(),
  limit: z.number().int().min(1).max(1000).optional(),
  cursor: z.string().min(1).max(1024).nullable().optional(),
});

/** `state.watch`: `state.changed` events for the keys of a namespace (with a prefix), made on any replica. */
export const StateWatchParamsSchema = z.object({ namespace: NamespaceSchema, prefix: z.string().max(512).optional() });

/** `state.unwatch`: ends a `state.watch` of the same namespace and prefix. */
export const StateUnwatchParamsSchema = StateWatchParamsSchema;

/** One entry appended to a memory thread. */
export const MemoryEntrySchema = z.object({
  role: z
    .string()
    .min(1)
    .max(64)
    .refine((role) => !/[\p{Cc}]/u.test(role), 'roles have no control characters'),
  content: z.unknown().refine((c) => c !== undefined, 'content is required (any JSON)'),
  meta: z.record(z.string(), z.unknown()).optional(),
});

/** `memory.append`: adds entries to the end of a thread, in order. */
export const MemoryAppendParamsSchema = z.object({
  thread: NamespaceSchema,
  entries: z.array(MemoryEntrySchema).min(1).max(100),
});

/** `memory.read`: a thread's entries, oldest first: all, after a sequence number, or the newest few. */
export const MemoryReadParamsSchema = z.object({
  thread: NamespaceSchema,
  after: z.number().int().min(0).optional(),
  last: z.number().int().min(1).max(10_000).optional(),
});

/** `memory.clear`: empties a thread (its sequence numbers are never reused). */
export const MemoryClearParamsSchema = z.object({ thread: NamespaceSchema });

/** `cache.invalidate`: empties an agent's cached results (of one task, or all). */
export const CacheInvalidateParamsSchema = z.object({ agent: AgentNameSchema, task: TaskNameSchema.optional() });

/** `ping`: no parameters. */
export const PingParamsSchema = z.object({});

/** `task.result`: an agent's output for a task it was sent. */
export const TaskResultParamsSchema = z.object({ taskId: TaskIdSchema, output: z.unknown().optional() });

/** The error an agent reports in `task.error`. */
export const AgentErrorSchema = z.object({
  code: z.string().max(64).optional(),
  message: z.string().max(4096),
  retryable: z.boolean().optional(),
  details: z.unknown().optional(),
});

/** `task.error`: the agent could not complete a task. */
export const TaskErrorParamsSchema = z.object({ taskId: TaskIdSchema, error: AgentErrorSchema });

/** `task.progress`: intermediate progress of a task, forwarded to the caller. */
export const TaskProgressParamsSchema = z.object({ taskId: TaskIdSchema, progress: z.unknown() });

/** Every action a client may send, and the schema of its parameters. */
export const ACTION_PARAMS = {
  hello: HelloParamsSchema,
  register: RegisterParamsSchema,
  coordinator: CoordinatorParamsSchema,
  delegate: DelegateParamsSchema,
  'task.get': TaskGetParamsSchema,
  'task.cancel': TaskCancelParamsSchema,
  'task.subscribe': TaskSubscribeParamsSchema,
  'task.respond': TaskRespondParamsSchema,
  'task.retry': TaskRetryParamsSchema,
  'task.list': TaskListParamsSchema,
  'workflow.start': WorkflowStartParamsSchema,
  'approval.list': ApprovalListParamsSchema,
  'approval.get': ApprovalGetParamsSchema,
  'approval.decide': ApprovalDecideParamsSchema,
  'cluster.watch': ClusterWatchParamsSchema,
  'cluster.unwatch': ClusterUnwatchParamsSchema,
  'tasks.watch': TasksWatchParamsSchema,
  'tasks.unwatch': TasksUnwatchParamsSchema,
  'agents.list': AgentsListParamsSchema,
  'state.get': StateGetParamsSchema,
  'state.set': StateSetParamsSchema,
  'state.delete': StateDeleteParamsSchema,
  'state.list': StateListParamsSchema,
  'state.watch': StateWatchParamsSchema,
  'state.unwatch': StateUnwatchParamsSchema,
  'memory.append': MemoryAppendParamsSchema,
  'memory.read': MemoryReadParamsSchema,
  'memory.clear': MemoryClearParamsSchema,
  'cache.invalidate': CacheInvalidateParamsSchema,
  ping: PingParamsSchema,
  'task.result': TaskResultParamsSchema,
  'task.error': TaskErrorParamsSchema,
  'task.progress': TaskProgressParamsSchema,
} as const;

/** The name of an action. */
export type ActionName = keyof typeof ACTION_PARAMS;

/** The parameters of an action, as parsed. */
export type ActionParams<A extends ActionName> = z.infer<(typeof ACTION_PARAMS)[A]>;

/** The actions an agent answers its tasks with. */
export type AgentReplyAction = 'task.result' | 'task.error' | 'task.progress';

/** Every other action: a request, which is always answered. */
export type RequestAction = Exclude<ActionName, AgentReplyAction>;

/** Agent replies: answered only when they carry an `id`. */
export const AGENT_REPLY_ACTIONS: ReadonlySet<ActionName> = new Set<AgentReplyAction>([
  'task.result',
  'task.error',
  'task.progress',
]);

/** Whether an action is an agent's reply to its task. */
export function isAgentReply(action: ActionName): action is AgentReplyAction {
  return AGENT_REPLY_ACTIONS.has(action);
}

/** Whether a string names a known action. */
export function isActionName(name: string): name is ActionName {
  return Object.hasOwn(ACTION_PARAMS, name);
}
