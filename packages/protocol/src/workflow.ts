import { z } from 'zod';
import { AgentNameSchema, TaskNameSchema } from './primitives';
import { type Condition, ConditionSchema, conditionPaths, ValuePathSchema } from './workflow-condition';

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

/** A step runs only if its condition holds; otherwise it is skipped and its input passes on. */
const stepFields = {
  id: StepIdSchema,
  when: ConditionSchema.optional(),
};

/** A sequential step: one agent call. */
export const AgentStepSchema = z.strictObject({
  ...callFields,
  when: ConditionSchema.optional(),
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
  ...stepFields,
  parallel: z.array(BranchSchema).min(1).max(64),
  join: JoinSchema.optional(),
  onFailure: FailurePolicySchema.optional(),
  escalation: EscalationPolicySchema.optional(),
});

/** Names of a switch step's cases: what the switch value is compared with. */
export const CaseNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, 'case names are letters, digits, _ . : and -, at most 64 characters');

/** The most steps a plan step may add, by default and at most, counting branches and nested steps. */
export const DEFAULT_PLAN_STEPS = 16;
export const MAX_PLAN_STEPS = 64;
/** How deep plans nest: a planned step may itself plan, this many levels in all. */
export const MAX_PLAN_DEPTH = 3;
/** How deep switch steps nest inside one another's cases. */
export const MAX_SWITCH_DEPTH = 4;
/** The most steps (branches and nested steps included) a workflow holds, planned ones included. */
export const MAX_WORKFLOW_STEPS = 256;

/** A plan step: an agent (typically an LLM planner) returns the next steps as data. */
export const PlanStepSchema = z.strictObject({
  ...stepFields,
  plan: z.strictObject({
    agent: AgentNameSchema,
    task: TaskNameSchema,
    input: z.unknown().optional(),
    timeoutMs: callFields.timeoutMs,
    retry: callFields.retry,
  }),
  /** The most steps the plan may add (branches and nested steps count). */
  maxSteps: z.number().int().min(1).max(MAX_PLAN_STEPS).optional(),
  onFailure: FailurePolicySchema.optional(),
  escalation: EscalationPolicySchema.optional(),
});

export type AgentStep = z.infer<typeof AgentStepSchema>;
export type ParallelStep = z.infer<typeof ParallelStepSchema>;
export type PlanStep = z.infer<typeof PlanStepSchema>;

/**
 * A switch (router) step: the value at `switch` (an earlier step's output, the input) picks the
 * case whose name it equals (`default` when none does), and that case's steps run next. The
 * input passes through the switch unchanged.
 */
export interface SwitchStep {
  id: string;
  when?: Condition | undefined;
  switch: string;
  cases: Record<string, WorkflowStep[]>;
  default?: WorkflowStep[] | undefined;
}

export type WorkflowStep = AgentStep | ParallelStep | SwitchStep | PlanStep;

export const SwitchStepSchema: z.ZodType<SwitchStep> = z.lazy(() =>
  z.strictObject({
    ...stepFields,
    switch: ValuePathSchema,
    cases: z.record(CaseNameSchema, z.array(WorkflowStepSchema).max(64)),
    default: z.array(WorkflowStepSchema).max(64).optional(),
  }),
);

export const WorkflowStepSchema: z.ZodType<WorkflowStep> = z
  .lazy(() => z.union([AgentStepSchema, ParallelStepSchema, SwitchStepSchema, PlanStepSchema]))
  .meta({ id: 'WorkflowStep' });

/** What an agent call of a workflow is, wherever it appears. */
export interface WorkflowCall {
  agent: string;
  task: string;
}

/**
 * Every agent call a list of steps can make: steps, branches, every case of every switch, and the
 * planners of plan steps (not what they will plan: that is checked when the plan arrives).
 */
export function workflowCalls(steps: readonly WorkflowStep[]): WorkflowCall[] {
  return steps.flatMap((step): WorkflowCall[] => {
    if ('parallel' in step) return step.parallel.map(({ agent, task }) => ({ agent, task }));
    if ('plan' in step) return [{ agent: step.plan.agent, task: step.plan.task }];
    if ('switch' in step) {
      return [...Object.values(step.cases).flat(), ...(step.default ?? [])].flatMap((s) => workflowCalls([s]));
    }
    return [{ agent: step.agent, task: step.task }];
  });
}

/** The steps of each case of a switch step, then its default. */
export function switchBranches(step: SwitchStep): [string[], WorkflowStep[]][] {
  const out: [string[], WorkflowStep[]][] = Object.entries(step.cases).map(([name, steps]) => [['cases', name], steps]);
  if (step.default) out.push([['default'], step.default]);
  return out;
}

/** Where step ids and references are checked: what came before, and what exists elsewhere. */
export interface StepScope {
  /** Ids of the steps before this point: a condition may read them. */
  earlier: Set<string>;
  /** Ids taken by steps that come later: not readable, not reusable. */
  reserved?: ReadonlySet<string>;
  /** The plan depth of the steps checked (0: the definition's own). */
  planDepth: number;
}

/** A problem with a list of steps, at a path below it. */
export interface StepIssue {
  path: (string | number)[];
  message: string;
}

/**
 * Checks what the schema alone cannot: ids unique in the whole workflow, conditions and switches
 * reading only earlier steps, join counts, how deep switches and plans nest. @returns the issues
 * and the number of steps (branches and nested steps count).
 */
export function checkSteps(
  steps: readonly WorkflowStep[],
  scope: StepScope,
  path: (string | number)[] = [],
  switchDepth = 0,
): { issues: StepIssue[]; count: number } {
  const issues: StepIssue[] = [];
  let count = 0;
  const claim = (id: string, at: (string | number)[]): void => {
    if (scope.earlier.has(id) || scope.reserved?.has(id))
      issues.push({ path: at, message: `step id '${id}' is used twice` });
    scope.earlier.add(id);
  };
  const reads = (step: WorkflowStep, refs: string[], at: (string | number)[], what: string): void => {
    for (const ref of refs) {
      const [root, id] = ref.split('.');
      if (root !== 'steps' || id === undefined) continue;
      if (id === step.id || !scope.earlier.has(id)) {
        issues.push({
          path: at,
          message: `step '${step.id}': ${what} reads step '${id}', which is not an earlier step of this workflow`,
        });
      }
    }
  };
  steps.forEach((step, i) => {
    const at = [...path, i];
    count += 1;
    if (step.when) reads(step, conditionPaths(step.when), [...at, 'when'], 'its condition');
    if ('switch' in step) reads(step, [step.switch], [...at, 'switch'], 'the switch');
    claim(step.id, [...at, 'id']);
    if ('parallel' in step) {
      step.parallel.forEach((branch, j) => {
        claim(branch.id, [...at, 'parallel', j, 'id']);
      });
      count += step.parallel.length;
      if (step.join?.count !== undefined && step.join.count > step.parallel.length) {
        issues.push({
          path: [...at, 'join', 'count'],
          message: `join count ${step.join.count} is more than the ${step.parallel.length} branches`,
        });
      }
    }
    if ('plan' in step && scope.planDepth >= MAX_PLAN_DEPTH) {
      issues.push({
        path: [...at, 'plan'],
        message: `step '${step.id}': plans nest at most ${MAX_PLAN_DEPTH} deep, and this one would be deeper`,
      });
    }
    if ('switch' in step) {
      if (switchDepth + 1 > MAX_SWITCH_DEPTH) {
        issues.push({
          path: [...at, 'switch'],
          message: `step '${step.id}': switch steps nest at most ${MAX_SWITCH_DEPTH} deep`,
        });
        return;
      }
      for (const [where, branch] of switchBranches(step)) {
        const inner = checkSteps(branch, scope, [...at, ...where], switchDepth + 1);
        issues.push(...inner.issues);
        count += inner.count;
      }
    }
  });
  return { issues, count };
}

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
    const { issues, count } = checkSteps(workflow.steps, { earlier: new Set(), planDepth: 0 }, ['steps']);
    for (const issue of issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
    if (count > MAX_WORKFLOW_STEPS) {
      ctx.addIssue({
        code: 'custom',
        message: `a workflow has at most ${MAX_WORKFLOW_STEPS} steps, branches and nested steps included (got ${count})`,
        path: ['steps'],
      });
    }
  });
export type WorkflowDefinition = z.infer<typeof WorkflowDefinitionSchema>;

/**
 * What a plan step's agent returns: the steps to run next (validated as a workflow's steps are),
 * and optionally the input the first of them gets (otherwise the plan step's own input passes on).
 */
export const PlanSchema = z.strictObject({
  steps: z.array(WorkflowStepSchema).max(MAX_PLAN_STEPS),
  input: z.unknown().optional(),
});
export type Plan = z.infer<typeof PlanSchema>;

/** How many branches must succeed for a parallel step to succeed. */
export function joinCount(step: ParallelStep): number {
  const join = step.join ?? { mode: 'all' };
  if (join.mode === 'all') return step.parallel.length;
  if (join.mode === 'first') return join.count ?? 1;
  return join.count ?? Math.floor(step.parallel.length / 2) + 1;
}
