import { z } from 'zod';
import { AgentNameSchema, TaskNameSchema } from './primitives';

/** The longest a workflow may run, and the longest a human may be waited for: 30 days. */
export const MAX_WORKFLOW_DEADLINE_MS = 30 * 86_400_000;

/** Retries of a task: how many attempts in all, and the first backoff (doubled each retry, with jitter). */
export const RetryPolicySchema = z.strictObject({
  attempts: z.number().int().min(1).max(20),
  backoffMs: z.number().int().min(0).max(3_600_000).optional(),
});
export type RetryPolicy = z.infer<typeof RetryPolicySchema>;

/** Waiting for a human: how long, and what then (fail the step, or go on without it). */
export const EscalationPolicySchema = z.strictObject({
  timeoutMs: z.number().int().min(1).max(MAX_WORKFLOW_DEADLINE_MS),
  onTimeout: z.enum(['fail', 'continue']).optional(),
});
export type EscalationPolicy = z.infer<typeof EscalationPolicySchema>;

/** What a failed step does to its workflow. */
export const FailurePolicySchema = z.enum(['fail', 'continue', 'escalate']);
export type FailurePolicy = z.infer<typeof FailurePolicySchema>;

/** Step and branch ids: letters, digits, `_` and `-`, up to 64 characters. */
export const StepIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'step ids are letters, digits, _ and -, at most 64 characters');

/** One agent call of a workflow. Without `input`, it gets the previous step's output. */
const callFields = {
  id: StepIdSchema,
  agent: AgentNameSchema,
  task: TaskNameSchema,
  input: z.unknown().optional(),
  /** Deadline of one attempt. */
  timeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  retry: RetryPolicySchema.optional(),
};

/** A sequential step: one agent call. */
export const AgentStepSchema = z.strictObject({
  ...callFields,
  onFailure: FailurePolicySchema.optional(),
  escalation: EscalationPolicySchema.optional(),
});

/** A branch of a parallel step. */
export const BranchSchema = z.strictObject(callFields);

/**
 * When a parallel step is done: `all` branches; the `first` N to succeed; or a `quorum` (N, by
 * default a majority). Branches still running when it is done are canceled.
 */
export const JoinSchema = z.strictObject({
  mode: z.enum(['all', 'first', 'quorum']),
  count: z.number().int().min(1).optional(),
});
export type Join = z.infer<typeof JoinSchema>;

/** A parallel step: fan out to every branch, fan in by `join`. Its output maps branch ids to outputs. */
export const ParallelStepSchema = z.strictObject({
  id: StepIdSchema,
  parallel: z.array(BranchSchema).min(1).max(64),
  join: JoinSchema.optional(),
  onFailure: FailurePolicySchema.optional(),
  escalation: EscalationPolicySchema.optional(),
});

export const WorkflowStepSchema = z.union([AgentStepSchema, ParallelStepSchema]);
export type WorkflowStep = z.infer<typeof WorkflowStepSchema>;
export type AgentStep = z.infer<typeof AgentStepSchema>;
export type ParallelStep = z.infer<typeof ParallelStepSchema>;

/**
 * A workflow: steps run in order, each one's output the next one's input. A step fails by its
 * `onFailure` policy (default `fail`); the whole workflow ends by `deadlineMs` at the latest.
 */
export const WorkflowDefinitionSchema = z
  .strictObject({
    name: TaskNameSchema.optional(),
    deadlineMs: z.number().int().min(1).max(MAX_WORKFLOW_DEADLINE_MS).optional(),
    steps: z.array(WorkflowStepSchema).min(1).max(64),
  })
  .superRefine((workflow, ctx) => {
    const seen = new Set<string>();
    workflow.steps.forEach((step, i) => {
      const ids = 'parallel' in step ? [step.id, ...step.parallel.map((b) => b.id)] : [step.id];
      ids.forEach((id, j) => {
        if (seen.has(id)) {
          ctx.addIssue({
            code: 'custom',
            message: `step id '${id}' is used twice`,
            path: j === 0 ? ['steps', i, 'id'] : ['steps', i, 'parallel', j - 1, 'id'],
          });
        }
        seen.add(id);
      });
      if ('parallel' in step && step.join?.count !== undefined && step.join.count > step.parallel.length) {
        ctx.addIssue({
          code: 'custom',
          message: `join count ${step.join.count} is more than the ${step.parallel.length} branches`,
          path: ['steps', i, 'join', 'count'],
        });
      }
    });
  });
export type WorkflowDefinition = z.infer<typeof WorkflowDefinitionSchema>;

/** How many branches must succeed for a parallel step to succeed. */
export function joinCount(step: ParallelStep): number {
  const join = step.join ?? { mode: 'all' };
  if (join.mode === 'all') return step.parallel.length;
  if (join.mode === 'first') return join.count ?? 1;
  return join.count ?? Math.floor(step.parallel.length / 2) + 1;
}
