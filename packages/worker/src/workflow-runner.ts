import { randomUUID } from 'node:crypto';
import { GatewayError, isTerminal, type LedgerTask, principalOf, type TaskJobData, TIMINGS } from '@openclaw/core';
import {
  type AgentStep,
  type ConditionScope,
  checkSteps,
  DEFAULT_PLAN_STEPS,
  describeIssues,
  evaluateCondition,
  joinCount,
  MAX_WORKFLOW_STEPS,
  type ParallelStep,
  PlanSchema,
  type PlanStep,
  type SwitchStep,
  switchBranches,
  type TaskWait,
  valueAt,
  type WireError,
  type WorkflowDefinition,
  WorkflowDefinitionSchema,
  type WorkflowStep,
  workflowCalls,
} from '@openclaw/protocol';
import { DelayedError, type Job } from 'bullmq';
import { canceledError, park, type RunnerContext } from './task-runner';

/** One step's run, kept in the workflow's ledger record. */
export interface StepRun {
  status: 'working' | 'input-required' | 'completed' | 'failed' | 'skipped';
  /** Child task ids, one per branch (one for a sequential step), planned before they are created. */
  taskIds: string[];
  /** Branch ids, in the order of `taskIds`. */
  branches: string[];
  startedAt: number;
  endedAt?: number;
  output?: unknown;
  error?: WireError;
  /** Skipped because its `when` condition did not hold. */
  reason?: 'condition';
  /** A switch step: the case it chose (`default`, or none when nothing matched and there is no default). */
  case?: string;
  /** A plan step: the ids of the steps its plan added. */
  planned?: string[];
}

/** A step still to run, and how deep in plans it was made (0: the definition's own). */
export interface QueuedStep {
  step: WorkflowStep;
  planDepth: number;
}

/** A workflow's run state. */
export interface WorkflowRun {
  /** How many steps have ended (completed, failed over, skipped or routed). */
  stage: number;
  /** The input of the step running now: the previous step's output. */
  input: unknown;
  steps: Record<string, StepRun>;
  /**
   * The steps still to run, the first one running now: the definition's, with the chosen case of
   * each switch and each plan's steps put in front as they come. Absent in a run saved before it
   * existed: then the definition's steps from `stage` on.
   */
  queue?: QueuedStep[];
}

/** A step that runs agent calls (child tasks). */
type CallingStep = AgentStep | ParallelStep | PlanStep;

type Outcome =
  | { kind: 'pending'; waitingForHuman: LedgerTask[] }
  | { kind: 'ok'; output: unknown }
  | { kind: 'failed'; error: WireError; skip?: boolean };

/**
 * Runs workflows. A workflow is a task whose steps are child tasks: each turn of its job looks at
 * its running step's children in the ledger, moves on when the step is done, and otherwise parks
 * (a delayed job) until a child wakes it or the guard interval passes. There are no BullMQ
 * parent/child dependencies: a failed, canceled, stalled or lost child can never leave the workflow
 * waiting, because the workflow itself decides, with its deadline always set as the latest wake-up.
 */
export class WorkflowRunner {
  constructor(private readonly ctx: RunnerContext) {}

  async run(job: Job<TaskJobData>, token: string | undefined): Promise<string> {
    try {
      return await this.turn(job, token);
    } catch (error) {
      if (error instanceof DelayedError) throw error;
      if (error instanceof GatewayError && error.code === 'UNAVAILABLE') {
        // Redis trouble mid-turn: try the turn again shortly rather than fail the workflow.
        return park(job, token, Date.now() + 1000);
      }
      throw error;
    }
  }

  private async turn(job: Job<TaskJobData>, token: string | undefined): Promise<string> {
    const { ledger } = this.ctx;
    let wf = await ledger.get(job.data.taskId);
    if (!wf || isTerminal(wf.status)) return 'gone';
    const parsed = WorkflowDefinitionSchema.safeParse(wf.definition);
    if (!parsed.success) {
      await this.end(wf, 'failed', {
        error: new GatewayError('BAD_REQUEST', 'the workflow definition is invalid').toWire(),
      });
      return 'invalid';
    }
    const definition = parsed.data;
    const run: WorkflowRun = (wf.state as WorkflowRun | undefined) ?? { stage: 0, input: wf.data, steps: {} };
    run.queue ??= definition.steps.slice(run.stage).map((step) => ({ step, planDepth: 0 }));
    const queue = run.queue;
    if (wf.cancelRequested) {
      await this.ctx.tasks.cancelSteps(runningTaskIds(run));
      await this.end(wf, 'canceled', { error: canceledError() });
      return 'canceled';
    }
    if (wf.deadline !== undefined && Date.now() >= wf.deadline) {
      await this.ctx.tasks.cancelSteps(runningTaskIds(run));
      const step = queue[0]?.step;
      await this.end(wf, 'failed', {
        error: new GatewayError('TIMEOUT', `the workflow's deadline passed${step ? ` during step '${step.id}'` : ''}`, {
          retryable: false,
          details: { step: step?.id },
        }).toWire(),
      });
      return 'deadline';
    }
    if (wf.status === 'submitted') {
      await ledger.transition(wf, {
        status: 'working',
        from: ['submitted'],
        fields: { startedAt: String(Date.now()) },
      });
      wf = { ...wf, status: 'working' };
    }
    for (;;) {
      const next = queue[0];
      if (!next) {
        await this.end(wf, 'completed', { output: run.input });
        return 'completed';
      }
      const step = next.step;
      // Step ids are the client's (`constructor`, `toString` are valid ones): own entries only.
      let sr = Object.hasOwn(run.steps, step.id) ? run.steps[step.id] : undefined;
      if (!sr) {
        if (step.when !== undefined && !evaluateCondition(step.when, scopeOf(wf, run))) {
          run.steps[step.id] = {
            status: 'skipped',
            reason: 'condition',
            taskIds: [],
            branches: [],
            startedAt: Date.now(),
            endedAt: Date.now(),
          };
          queue.shift();
          run.stage += 1;
          await this.save(wf, run, { stepSkipped: step.id, reason: 'condition' });
          continue;
        }
        if ('switch' in step) {
          const chosen = chooseCase(step, scopeOf(wf, run));
          run.steps[step.id] = {
            status: 'completed',
            taskIds: [],
            branches: [],
            startedAt: Date.now(),
            endedAt: Date.now(),
            ...(chosen ? { case: chosen.name } : {}),
          };
          queue.splice(0, 1, ...(chosen?.steps ?? []).map((s) => ({ step: s, planDepth: next.planDepth })));
          run.stage += 1;
          await this.save(wf, run, { stepRouted: step.id, case: chosen?.name ?? null });
          continue;
        }
        sr = await this.startStep(wf, run, step);
      }
      const calling = step as CallingStep;
      // What the step's tasks and the workflow's own flags look like before this look at them: if it
      // differs once the workflow has parked, something ended meanwhile and it wakes itself.
      const seen = await this.fingerprint(wf.taskId, sr.taskIds);
      let outcome: Outcome;
      if (sr.status === 'input-required') {
        outcome = await this.humanOutcome(wf, calling);
        if (outcome.kind === 'pending')
          return this.wait(
            job,
            token,
            wf,
            Math.min(wf.escalateUntil ?? Infinity, wf.deadline ?? Infinity),
            seen,
            sr.taskIds,
          );
      } else {
        outcome = await this.stepOutcome(wf, run, calling, sr);
      }
      if (outcome.kind === 'pending') {
        await this.mirrorHumanWait(wf, calling, sr, outcome.waitingForHuman);
        wf = { ...wf, status: outcome.waitingForHuman.length > 0 ? 'input-required' : 'working' };
        return this.wait(job, token, wf, Date.now() + TIMINGS.workflowGuardMs, seen, sr.taskIds);
      }
      // The step is done: stop the branches a join no longer needs.
      await this.ctx.tasks.cancelSteps(sr.taskIds);
      sr.endedAt = Date.now();
      if (outcome.kind === 'ok' && 'plan' in calling) {
        const accepted = this.acceptPlan(wf, run, calling, next.planDepth, outcome.output);
        if ('error' in accepted) {
          outcome = { kind: 'failed', error: accepted.error };
        } else {
          sr.status = 'completed';
          sr.output = outcome.output;
          sr.planned = accepted.steps.map((s) => s.id);
          if (accepted.input !== undefined) run.input = accepted.input;
          queue.splice(0, 1, ...accepted.steps.map((s) => ({ step: s, planDepth: next.planDepth + 1 })));
          run.stage += 1;
          await this.save(wf, run, { stepCompleted: step.id, planned: sr.planned });
          if (wf.status === 'input-required') {
            await ledger.transition(wf, { status: 'working', from: ['input-required'], fields: clearHumanFields() });
            wf = { ...wf, status: 'working' };
          }
          continue;
        }
      }
      if (outcome.kind === 'ok') {
        sr.status = 'completed';
        sr.output = outcome.output;
        run.input = outcome.output;
        queue.shift();
        run.stage += 1;
        await this.save(wf, run, { stepCompleted: step.id });
        if (wf.status === 'input-required') {
          await ledger.transition(wf, { status: 'working', from: ['input-required'], fields: clearHumanFields() });
          wf = { ...wf, status: 'working' };
        }
        continue;
      }
      sr.error = outcome.error;
      const policy = outcome.skip ? 'continue' : (calling.onFailure ?? 'fail');
      if (policy === 'continue') {
        // The step is skipped: the next one gets the same input this one got.
        sr.status = 'skipped';
        queue.shift();
        run.stage += 1;
        await this.save(wf, run, { stepSkipped: step.id, error: outcome.error });
        continue;
      }
      if (policy === 'escalate' && wf.status !== 'input-required') {
        sr.status = 'input-required';
        const until = Date.now() + (calling.escalation?.timeoutMs ?? wf.escalationTimeoutMs);
        const question = {
          step: step.id,
          message: `step '${step.id}' failed: ${outcome.error.message}`,
          error: outcome.error,
        };
        // The answer is the workflow's own: it stands in for the failed step's output.
        const waiting: TaskWait[] = [
          {
            step: step.id,
            taskId: wf.taskId,
            needs: 'answer',
            permission: 'task:respond',
            message: question.message,
            since: Date.now(),
            until,
          },
        ];
        await this.save(wf, run);
        await ledger.transition(wf, {
          status: 'input-required',
          fields: {
            question: JSON.stringify(question),
            escalateUntil: String(until),
            waiting: JSON.stringify(waiting),
          },
          event: { question, submittedBy: wf.principal },
          notifyOperators: true,
        });
        wf = { ...wf, status: 'input-required', escalateUntil: until };
        return this.wait(
          job,
          token,
          wf,
          Math.min(until, wf.deadline ?? Infinity),
          await this.fingerprint(wf.taskId, []),
        );
      }
      sr.status = 'failed';
      await this.save(wf, run);
      await this.end(wf, 'failed', {
        error: new GatewayError('AGENT_ERROR', `step '${step.id}' failed: ${outcome.error.message}`, {
          retryable: false,
          details: { step: step.id, error: outcome.error },
        }).toWire(),
      });
      return 'failed';
    }
  }

  /**
   * A plan step's output, checked before any of it runs: it must be a plan (`{steps, input?}`)
   * whose steps are valid workflow steps, with ids new in the workflow, conditions that read only
   * earlier steps, within the step's `maxSteps`, the plan depth and the workflow's size, and whose
   * every agent the workflow's starter may call. Governance then checks each planned call when it
   * is dispatched, as for every step.
   */
  private acceptPlan(
    wf: LedgerTask,
    run: WorkflowRun,
    step: PlanStep,
    planDepth: number,
    output: unknown,
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
      if (!this.ctx.can(starter, `agent:invoke:${call.agent}`)) {
        return refuse(
          `the workflow's starter may not call agent '${call.agent}' (missing permission 'agent:invoke:${call.agent}')`,
        );
      }
    }
    return { steps: plan.steps, ...(plan.input === undefined ? {} : { input: plan.input }) };
  }

  /** Plans a step's children in the run state (saved first), then creates and enqueues them. */
  private async startStep(wf: LedgerTask, run: WorkflowRun, step: CallingStep): Promise<StepRun> {
    const calls = 'parallel' in step ? step.parallel : [{ id: step.id }];
    const sr: StepRun = {
      status: 'working',
      taskIds: calls.map(() => randomUUID()),
      branches: calls.map((c) => c.id),
      startedAt: Date.now(),
    };
    run.steps[step.id] = sr;
    await this.save(wf, run, { stepStarted: step.id });
    await Promise.all(calls.map((_, i) => this.ctx.tasks.createStep(wf, childOf(step, sr, i, run.input))));
    return sr;
  }

  /**
   * Where a step stands, from its children's records. A child that is missing (a turn died between
   * planning the step and creating it) is created now, and one whose job is gone is queued again:
   * neither can leave the workflow waiting.
   */
  private async stepOutcome(wf: LedgerTask, run: WorkflowRun, step: CallingStep, sr: StepRun): Promise<Outcome> {
    const children = await this.ctx.ledger.getMany(sr.taskIds);
    const byId = new Map(children.map((c) => [c.taskId, c]));
    const ok: { branch: string; output: unknown; endedAt: number }[] = [];
    const failed: { branch: string; error: WireError; skip: boolean }[] = [];
    const waitingForHuman: LedgerTask[] = [];
    let pending = 0;
    for (let i = 0; i < sr.taskIds.length; i++) {
      const taskId = sr.taskIds[i]!;
      const branch = sr.branches[i]!;
      const child = byId.get(taskId);
      if (!child) {
        await this.ctx.tasks.createStep(wf, childOf(step, sr, i, run.input));
        pending += 1;
        continue;
      }
      if (child.status === 'completed') ok.push({ branch, output: child.output ?? null, endedAt: child.endedAt ?? 0 });
      else if (isTerminal(child.status)) {
        const error = child.error ?? lost(`step '${branch}' ended ${child.status}`);
        const timedOutHuman = (error.details as { escalation?: string } | undefined)?.escalation === 'timeout';
        failed.push({ branch, error, skip: timedOutHuman && child.escalationOnTimeout === 'continue' });
      } else if ((await this.ctx.tasks.queue.state(taskId)) === 'missing') {
        // Not ended, and no job would ever run it: queue it again.
        await this.ctx.tasks.createStep(wf, childOf(step, sr, i, run.input));
        pending += 1;
      } else {
        pending += 1;
        if (child.status === 'input-required') waitingForHuman.push(child);
      }
    }
    if (!('parallel' in step)) {
      if (ok[0]) return { kind: 'ok', output: ok[0].output };
      if (failed[0]) return { kind: 'failed', error: failed[0].error, skip: failed[0].skip };
      return { kind: 'pending', waitingForHuman };
    }
    const parallel = step as ParallelStep;
    const need = joinCount(parallel);
    if (ok.length >= need) {
      ok.sort((a, b) => a.endedAt - b.endedAt);
      const chosen = (parallel.join?.mode ?? 'all') === 'first' ? ok.slice(0, need) : ok;
      return { kind: 'ok', output: Object.fromEntries(chosen.map((o) => [o.branch, o.output])) };
    }
    if (ok.length + pending < need) {
      return {
        kind: 'failed',
        error: new GatewayError(
          'AGENT_ERROR',
          `${ok.length} of ${sr.taskIds.length} branches succeeded; ${need} needed`,
          { retryable: false, details: { branches: Object.fromEntries(failed.map((f) => [f.branch, f.error])) } },
        ).toWire(),
      };
    }
    return { kind: 'pending', waitingForHuman };
  }

  /** A step escalated by its failure policy: a human's answer is its output. */
  private async humanOutcome(wf: LedgerTask, step: CallingStep): Promise<Outcome> {
    if (wf.response !== undefined) return { kind: 'ok', output: wf.response.output };
    if (Date.now() < (wf.escalateUntil ?? 0)) return { kind: 'pending', waitingForHuman: [] };
    const error = new GatewayError('TIMEOUT', `no operator answered for step '${step.id}' in time`, {
      retryable: false,
      details: { escalation: 'timeout', step: step.id },
    }).toWire();
    return { kind: 'failed', error, skip: step.escalation?.onTimeout === 'continue' };
  }

  /**
   * While a step's task waits for a human, so does the workflow (and back). Its record says what it
   * waits for (kept up to date as branches start or stop waiting), so a listing needs no other read,
   * and its `question` names the waiting tasks, so `task.respond` on the workflow answers the step.
   */
  private async mirrorHumanWait(
    wf: LedgerTask,
    step: CallingStep,
    sr: StepRun,
    children: readonly LedgerTask[],
  ): Promise<void> {
    if (children.length > 0) {
      const waiting = children.map((child) => humanWaitOf(step.id, child));
      const question = { step: step.id, taskIds: waiting.map((w) => w.taskId) };
      const fields = { question: JSON.stringify(question), waiting: JSON.stringify(waiting) };
      if (wf.status !== 'input-required') {
        await this.ctx.ledger.transition(wf, {
          status: 'input-required',
          from: ['working'],
          fields,
          event: { question },
        });
      } else if (JSON.stringify(wf.waiting) !== fields.waiting) {
        await this.ctx.ledger.setFields(wf.taskId, fields);
      }
    } else if (wf.status === 'input-required' && sr.status === 'working') {
      await this.ctx.ledger.transition(wf, { status: 'working', from: ['input-required'], fields: clearHumanFields() });
    }
  }

  /**
   * Parks the workflow until `until` (never past its deadline). Children that ended meanwhile wake
   * it; so that no wake-up is lost between the last look and the park, it looks once more after
   * parking and wakes itself if something changed.
   */
  private async wait(
    job: Job<TaskJobData>,
    token: string | undefined,
    wf: LedgerTask,
    until: number,
    seen: string,
    watch: readonly string[] = [],
  ): Promise<never> {
    const wakeAt = Math.min(until, wf.deadline ?? Infinity);
    await job.moveToDelayed(Math.max(Date.now(), wakeAt), token);
    if ((await this.fingerprint(wf.taskId, watch)) !== seen) await this.ctx.tasks.queue.wake(wf.taskId);
    throw new DelayedError();
  }

  /** The statuses of the workflow and the watched children, to notice a change. */
  private async fingerprint(workflowId: string, watch: readonly string[]): Promise<string> {
    const [workflow, ...children] = await this.ctx.ledger.getMany([workflowId, ...watch]);
    const own = `${workflow?.response ? 1 : 0}:${workflow?.cancelRequested ? 1 : 0}`;
    return [own, ...children.map((t) => `${t.taskId}:${t.status}`)].join(',');
  }

  private async save(wf: LedgerTask, run: WorkflowRun, event?: Record<string, unknown>): Promise<void> {
    await this.ctx.ledger.setFields(wf.taskId, { state: JSON.stringify(run), response: undefined });
    wf.response = undefined;
    if (event) {
      await this.ctx.ledger
        .transition(wf, { eventName: 'task.progress', event: { progress: event } })
        .catch(() => undefined);
    }
  }

  private async end(
    wf: LedgerTask,
    status: 'completed' | 'failed' | 'canceled',
    result: { output?: unknown; error?: WireError },
  ): Promise<void> {
    const fields: Record<string, string | undefined> = { endedAt: String(Date.now()), ...clearHumanFields() };
    const event: Record<string, unknown> = {};
    if (result.output !== undefined) {
      fields.output = JSON.stringify(result.output ?? null);
      event.output = result.output;
    }
    if (result.error !== undefined) {
      fields.error = JSON.stringify(result.error);
      event.error = result.error;
    }
    await this.ctx.ledger.transition(wf, { status, fields, event });
  }
}

function clearHumanFields(): Record<string, undefined> {
  return { question: undefined, escalateUntil: undefined, waiting: undefined };
}

/**
 * What a step's child task in `input-required` waits for: an operator's answer, or the decision of
 * the approval its message needs (and who may give it).
 * @internal
 */
export function humanWaitOf(stepId: string, child: LedgerTask): TaskWait {
  const question = child.question as
    | { message?: unknown; approval?: { reason?: unknown; required?: TaskWait['required'] } }
    | undefined;
  const wait = {
    step: stepId,
    taskId: child.taskId,
    // A parallel step's children are its branches; a sequential step's child has the step's id.
    ...(child.stepId !== undefined && child.stepId !== stepId ? { branch: child.stepId } : {}),
    agent: child.agent,
    since: child.updatedAt,
    ...(child.escalateUntil === undefined ? {} : { until: child.escalateUntil }),
  };
  if (child.approvalId !== undefined) {
    const reason = question?.approval?.reason;
    const required = question?.approval?.required;
    return {
      ...wait,
      needs: 'approval',
      permission: 'approval:decide',
      approvalId: child.approvalId,
      ...(required === undefined ? {} : { required }),
      ...(typeof reason === 'string' ? { message: reason } : {}),
    };
  }
  const message = question?.message;
  return {
    ...wait,
    needs: 'answer',
    permission: 'task:respond',
    ...(typeof message === 'string' ? { message } : {}),
  };
}

function runningTaskIds(run: WorkflowRun): string[] {
  return Object.values(run.steps)
    .filter((s) => s.status === 'working' || s.status === 'input-required')
    .flatMap((s) => s.taskIds);
}

/** What creates the `i`-th child task of a step (the same each time: creating it is idempotent). */
function childOf(step: CallingStep, sr: StepRun, i: number, input: unknown) {
  const call = 'parallel' in step ? step.parallel[i]! : 'plan' in step ? { id: step.id, ...step.plan } : step;
  return {
    taskId: sr.taskIds[i]!,
    stepId: call.id,
    agent: call.agent,
    task: call.task,
    data: call.input !== undefined ? call.input : input,
    timeoutMs: call.timeoutMs,
    retry: call.retry,
    escalation: step.escalation,
  };
}

/** What a step's condition or switch reads: the workflow's input, the running input, earlier steps. */
function scopeOf(wf: LedgerTask, run: WorkflowRun): ConditionScope {
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
function chooseCase(step: SwitchStep, scope: ConditionScope): { name: string; steps: WorkflowStep[] } | undefined {
  const value = valueAt(step.switch, scope);
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    const name = String(value);
    if (Object.hasOwn(step.cases, name)) return { name, steps: step.cases[name]! };
  }
  return step.default ? { name: 'default', steps: step.default } : undefined;
}

/** Every step and branch id in a list of steps, switch cases included. */
function idsOf(steps: readonly WorkflowStep[]): string[] {
  return steps.flatMap((step) => [
    step.id,
    ...('parallel' in step ? step.parallel.map((b) => b.id) : []),
    ...('switch' in step ? switchBranches(step).flatMap(([, b]) => idsOf(b)) : []),
  ]);
}

function lost(message: string): WireError {
  return new GatewayError('AGENT_UNAVAILABLE', message, { retryable: false }).toWire();
}

/** The definition type, re-exported for the worker's users. */
export type { WorkflowDefinition };
