import { GatewayError, type LedgerTask, principalOf } from '@openclaw/core';
import {
  type ConditionScope,
  checkSteps,
  DEFAULT_PLAN_STEPS,
  describeIssues,
  MAX_WORKFLOW_STEPS,
  PlanSchema,
  type PlanStep,
  type SwitchStep,
  switchBranches,
  valueAt,
  type WireError,
  type WorkflowStep,
  workflowCalls,
} from '@openclaw/protocol';
import type { RunnerContext } from './task-runner';
import type { WorkflowRun } from './workflow-run';

/** What a step's condition or switch reads: the workflow's input, the running input, earlier steps. */
export function scopeOf(wf: LedgerTask, run: WorkflowRun): ConditionScope {
  const steps: ConditionScope['steps'] = {};
  for (const [id, sr] of Object.entries(run.steps)) {
    Object.defineProperty(steps, id, {
      enumerable: true,
      value: {
        status: sr.status,
        ...(sr.output === undefined ? {} : { output: sr.output }),
        ...(sr.error === undefined ? {} : { error: sr.error }),
        ...(sr.case === undefined ? {} : { case: sr.case }),
      },
    });
  }
  return { input: wf.data, previous: run.input, steps };
}

/**
 * The case a switch takes: the one named as its value (a string, number or boolean, compared as
 * text), else `default`, else none (nothing more runs for it).
 */
export function chooseCase(
  step: SwitchStep,
  scope: ConditionScope,
): { name: string; steps: WorkflowStep[] } | undefined {
  const value = valueAt(step.switch, scope);
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    const name = String(value);
    if (Object.hasOwn(step.cases, name)) return { name, steps: step.cases[name]! };
  }
  return step.default ? { name: 'default', steps: step.default } : undefined;
}

/**
 * A plan step's output, checked before any of it runs: it must be a plan (`{steps, input?}`)
 * whose steps are valid workflow steps, with ids new in the workflow, conditions that read only
 * earlier steps, within the step's `maxSteps`, the plan depth and the workflow's size, and whose
 * every agent the workflow's starter may call. Governance then checks each planned call when it
 * is dispatched, as for every step.
 * @param can whether a principal holds a permission under the cluster's policy now.
 */
export function acceptPlan(
  wf: LedgerTask,
  run: WorkflowRun,
  step: PlanStep,
  planDepth: number,
  output: unknown,
  can: RunnerContext['can'],
): { steps: WorkflowStep[]; input?: unknown } | { error: WireError } {
  const refuse = (message: string, details?: unknown): { error: WireError } => ({
    error: new GatewayError('BAD_REQUEST', `the plan of step '${step.id}' was refused: ${message}`, {
      retryable: false,
      ...(details === undefined ? {} : { details }),
    }).toWire(),
  });
  const parsed = PlanSchema.safeParse(output);
  if (!parsed.success) {
    const issues = describeIssues(parsed.error);
    return refuse(issues.map((i) => `${i.field || 'output'}: ${i.message}`).join('; '), issues);
  }
  const plan = parsed.data;
  const queued = (run.queue ?? []).slice(1).flatMap((q) => idsOf([q.step]));
  const { issues, count } = checkSteps(
    plan.steps,
    { earlier: new Set(Object.keys(run.steps)), reserved: new Set(queued), planDepth: planDepth + 1 },
    ['steps'],
  );
  if (issues.length > 0) {
    return refuse(
      issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      issues.map((i) => ({ field: i.path.join('.'), message: i.message })),
    );
  }
  const allowed = step.maxSteps ?? DEFAULT_PLAN_STEPS;
  if (count > allowed) return refuse(`it has ${count} steps (branches and nested steps count); at most ${allowed}`);
  const total = Object.keys(run.steps).length + queued.length + count;
  if (total > MAX_WORKFLOW_STEPS) {
    return refuse(`the workflow would have ${total} steps; a workflow has at most ${MAX_WORKFLOW_STEPS}`);
  }
  // As the starter: its roles under the live policy, and its credential's own grants as kept at
  // start (a record without them is judged by its roles alone: never more than the starter had).
  const starter = principalOf(wf.principal, wf.tenant, wf.roles, wf.grants ?? { permissions: [] });
  for (const call of workflowCalls(plan.steps)) {
    if (!can(starter, `agent:invoke:${call.agent}`)) {
      return refuse(
        `the workflow's starter may not call agent '${call.agent}' (missing permission 'agent:invoke:${call.agent}')`,
      );
    }
  }
  return { steps: plan.steps, ...(plan.input === undefined ? {} : { input: plan.input }) };
}

/** Every step and branch id in a list of steps, switch cases included. */
function idsOf(steps: readonly WorkflowStep[]): string[] {
  return steps.flatMap((step) => [
    step.id,
    ...('parallel' in step ? step.parallel.map((b) => b.id) : []),
    ...('switch' in step ? switchBranches(step).flatMap(([, b]) => idsOf(b)) : []),
  ]);
}
