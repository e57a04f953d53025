import { randomUUID } from 'node:crypto';
import { GatewayError, isTerminal, type LedgerTask, type TaskJobData, TIMINGS } from '@openclaw/core';
import {
  evaluateCondition,
  type TaskWait,
  type WireError,
  type WorkflowDefinition,
  WorkflowDefinitionSchema,
} from '@openclaw/protocol';
import { DelayedError, type Job } from 'bullmq';
import { canceledError, park, type RunnerContext } from './task-runner';
import { acceptPlan, chooseCase, scopeOf } from './workflow-routing';
import { type CallingStep, runningTaskIds, type StepRun, type WorkflowRun } from './workflow-run';
import { clearHumanFields, type StepOutcome, WorkflowSteps } from './workflow-steps';

/**
 * Runs workflows. A workflow is a task whose steps are child tasks: each turn of its job looks at
 * its running step's children in the ledger, moves on when the step is done, and otherwise parks
 * (a delayed job) until a child wakes it or the guard interval passes. There are no BullMQ
 * parent/child dependencies: a failed, canceled, stalled or lost child can never leave the workflow
 * waiting, because the workflow itself decides, with its deadline always set as the latest wake-up.
 *
 * The run state is in `workflow-run.ts`; conditions, switches and plans are judged in
 * `workflow-routing.ts`; a step's child tasks are {@link WorkflowSteps}'.
 */
export class WorkflowRunner {
  private readonly steps: WorkflowSteps;

  constructor(private readonly ctx: RunnerContext) {
    this.steps = new WorkflowSteps(ctx);
  }

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
      let outcome: StepOutcome;
      if (sr.status === 'input-required') {
        outcome = await this.steps.humanOutcome(wf, calling);
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
        outcome = await this.steps.outcome(wf, run, calling, sr);
      }
      if (outcome.kind === 'pending') {
        await this.steps.mirrorHumanWait(wf, calling, sr, outcome.waitingForHuman);
        wf = { ...wf, status: outcome.waitingForHuman.length > 0 ? 'input-required' : 'working' };
        return this.wait(job, token, wf, Date.now() + TIMINGS.workflowGuardMs, seen, sr.taskIds);
      }
      // The step is done: stop the branches a join no longer needs.
      await this.ctx.tasks.cancelSteps(sr.taskIds);
      sr.endedAt = Date.now();
      if (outcome.kind === 'ok' && 'plan' in calling) {
        const accepted = acceptPlan(wf, run, calling, next.planDepth, outcome.output, (principal, permission) =>
          this.ctx.can(principal, permission),
        );
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
    await this.steps.create(wf, step, sr, run.input);
    return sr;
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

/** The definition type, re-exported for the worker's users. */
export type { WorkflowDefinition };
