import { z } from 'zod';
import { AGENT_NAME_PATTERN } from './version';

/** A request id: echoed in the response. Strings up to 128 characters or finite numbers. */
export const RequestIdSchema = z.union([z.string().max(128), z.number()]);
export type RequestId = z.infer<typeof RequestIdSchema>;

/** An agent name, as `^[a-z0-9][a-z0-9._-]{0,62}$`. */
export const AgentNameSchema = z.string().regex(AGENT_NAME_PATTERN, 'agent names match ^[a-z0-9][a-z0-9._-]{0,62}$');

/** A task name an agent handles (free text, 1 to 128 characters). */
export const TaskNameSchema = z
  .string()
  .min(1)
  .max(128)
  .refine((name) => !/[\p{Cc}]/u.test(name), 'task names have no control characters');

/** A task id assigned by the gateway. */
export const TaskIdSchema = z.string().min(1).max(128);

/** An approval's id (a UUID). */
export const ApprovalIdSchema = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'expected an approval id (a UUID)');

/** Task states, with A2A-compatible names. The last four are terminal. */
export const TASK_STATES = [
  'submitted',
  'working',
  'input-required',
  'completed',
  'failed',
  'canceled',
  'rejected',
] as const;
export const TaskStateSchema = z.enum(TASK_STATES);
export type TaskState = z.infer<typeof TaskStateSchema>;

/** Terminal task states: nothing changes a task after it reaches one. */
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set(['completed', 'failed', 'canceled', 'rejected']);

/** The error object of an error response. */
export const WireErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  retryable: z.boolean(),
  retryAfterMs: z.number().int().nonnegative().optional(),
  details: z.unknown().optional(),
  /** `false`: no agent received the task, so the call may be sent again without running twice. */
  dispatched: z.boolean().optional(),
});
export type WireError = z.infer<typeof WireErrorSchema>;

/** A namespace of shared state, or a memory thread: `^[a-z0-9][a-z0-9._:-]{0,127}$`. */
export const NamespaceSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._:-]{0,127}$/,
    'expected ^[a-z0-9][a-z0-9._:-]{0,127}$ (lowercase letters, digits, ".", "_", ":", "-")',
  );

/** A key of shared state: 1 to 512 characters. */
export const StateKeySchema = z
  .string()
  .min(1, 'expected 1 to 512 characters')
  .max(512, 'expected 1 to 512 characters');
