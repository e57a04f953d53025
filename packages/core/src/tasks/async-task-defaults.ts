import { GATEWAY_SETTINGS } from '../config/settings';

/** Cluster defaults of async tasks (from the gateway's settings). */
export interface AsyncTaskDefaults {
  /** Attempts in all when neither the call nor the agent says. */
  attempts: number;
  backoffMs: number;
  /** Deadline of one attempt when the call gives none. */
  timeoutMs: number;
  /** How long records (and failed jobs) are kept after their last change. */
  retentionMs: number;
  /** How long an idempotency key stands for its task. */
  idempotencyWindowMs: number;
  /** How long to wait for a human when no policy says. */
  escalationTimeoutMs: number;
  /** Deadline of a workflow that gives none. */
  workflowDeadlineMs: number;
}

/** The settings async tasks take their defaults from (see config/settings.ts). */
export interface AsyncTaskSettings {
  taskAttempts: number;
  taskBackoffMs: number;
  defaultTimeoutMs: number;
  taskRetentionMs: number;
  idempotencyWindowMs: number;
  escalationTimeoutMs: number;
  workflowDeadlineMs: number;
}

/** Async task defaults from settings; without any, the settings' own defaults. */
export function asyncTaskDefaults(settings?: AsyncTaskSettings): AsyncTaskDefaults {
  const s =
    settings ??
    (Object.fromEntries(
      (
        [
          'taskAttempts',
          'taskBackoffMs',
          'defaultTimeoutMs',
          'taskRetentionMs',
          'idempotencyWindowMs',
          'escalationTimeoutMs',
          'workflowDeadlineMs',
        ] as const
      ).map((key) => [key, Number(GATEWAY_SETTINGS[key].default)]),
    ) as unknown as AsyncTaskSettings);
  return {
    attempts: s.taskAttempts,
    backoffMs: s.taskBackoffMs,
    timeoutMs: s.defaultTimeoutMs,
    retentionMs: s.taskRetentionMs,
    idempotencyWindowMs: s.idempotencyWindowMs,
    escalationTimeoutMs: s.escalationTimeoutMs,
    workflowDeadlineMs: s.workflowDeadlineMs,
  };
}
