import { z } from 'zod';
import { AgentNameSchema, TaskIdSchema, TaskStateSchema, WireErrorSchema } from './primitives';
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
  limits: z.object({ maxFrameBytes: z.number().int(), heartbeatMs: z.number().int() }),
});
export type HelloResult = z.infer<typeof HelloResultSchema>;

export const RegisterResultSchema = z.object({ agent: AgentNameSchema, instanceId: z.string() });
export type RegisterResult = z.infer<typeof RegisterResultSchema>;

export const CoordinatorResultSchema = z.union([
  z.object({ taskId: TaskIdSchema, status: z.literal('completed'), output: z.unknown() }),
  z.object({ taskId: TaskIdSchema, status: z.literal('submitted') }),
]);
export type CoordinatorResult = z.infer<typeof CoordinatorResultSchema>;

/** The record of a task, as `task.get` returns it. Times are epoch milliseconds. */
export const TaskRecordSchema = z.object({
  taskId: TaskIdSchema,
  agent: AgentNameSchema,
  task: z.string(),
  status: TaskStateSchema,
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
  output: z.unknown().optional(),
  error: WireErrorSchema.optional(),
});
export type TaskRecord = z.infer<typeof TaskRecordSchema>;

export const TaskCancelResultSchema = z.object({ taskId: TaskIdSchema, status: z.literal('canceled') });

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
