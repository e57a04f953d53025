import type { AgentStep, ParallelStep, PlanStep, WireError, WorkflowStep } from '@openclaw/protocol';

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
export type CallingStep = AgentStep | ParallelStep | PlanStep;

/** The child tasks of a run's steps that have not ended. */
export function runningTaskIds(run: WorkflowRun): string[] {
  return Object.values(run.steps)
    .filter((s) => s.status === 'working' || s.status === 'input-required')
    .flatMap((s) => s.taskIds);
}
