/**
 * The OpenClaw worker: consumes the BullMQ task queue and runs async tasks and workflows.
 *
 * @example
 * import { runWorker } from '@openclaw/worker';
 * await runWorker({ flags: { concurrency: '8' } });
 */
export { type RunWorkerOptions, runWorker } from './run-worker';
export { INPUT_REQUIRED_CODE, TaskRunner } from './task-runner';
export { TaskWorker, type TaskWorkerOptions, type WorkerStatus } from './task-worker';
export type { StepRun, WorkflowRun } from './workflow-run';
export { WorkflowRunner } from './workflow-runner';
