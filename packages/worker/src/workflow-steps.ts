import { GatewayError, isTerminal, type LedgerTask } from '@openclaw/core';
import { joinCount, type ParallelStep, type TaskWait, type WireError } from '@openclaw/protocol';
import type { RunnerContext } from './task-runner';
import type { CallingStep, StepRun, WorkflowRun } from './workflow-run';

/** Where a step stands: still running (and which of its tasks wait for a human), done, or failed. */
export type StepOutcome =
  | { kind: 'pending'; waitingForHuman: LedgerTask[] }
  | { kind: 'ok'; output: unknown }
  | { kind: 'failed'; error: WireError; skip?: boolean };

/**
 * A workflow's steps as child tasks: created (the same ones each time, so creating them again is
 * harmless), read to tell where a step stands, and mirrored on the workflow while one of them waits
 * for a human.
 */
export class WorkflowSteps {
  constructor(private readonly ctx: Pick<RunnerContext, 'ledger' | 'tasks'>) {}

  /** Creates and enqueues the child tasks planned for a step (those that exist are left as they are). */
  async create(wf: LedgerTask, step: CallingStep, sr: StepRun, input: unknown): Promise<void> {
    await Promise.all(sr.taskIds.map((_, i) => this.ctx.tasks.createStep(wf, childOf(step, sr, i, input))));
  }

  /**
   * Where a step stands, from its children's records. A child that is missing (a turn died between
   * planning the step and creating it) is created now, and one whose job is gone is queued again:
   * neither can leave the workflow waiting.
   */
  async outcome(wf: LedgerTask, run: WorkflowRun, step: CallingStep, sr: StepRun): Promise<StepOutcome> {
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
  async humanOutcome(wf: LedgerTask, step: CallingStep): Promise<StepOutcome> {
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
  async mirrorHumanWait(
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
}

/** The workflow's fields of a wait for a human, to clear once it no longer waits. */
export function clearHumanFields(): Record<string, undefined> {
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

function lost(message: string): WireError {
  return new GatewayError('AGENT_UNAVAILABLE', message, { retryable: false }).toWire();
}
