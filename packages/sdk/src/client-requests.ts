import type { WireError } from '@openclaw/protocol';
import type { TaskStatusEvent } from './client-events';
import type { ProgressListener } from './pending-requests';

/** Options of {@link GatewayClient.request}. */
export interface RequestOptions {
  /** Local deadline, in milliseconds. Default: the client's `requestTimeoutMs`. */
  timeoutMs?: number;
  /** Aborting it rejects the request with `CANCELED` (the gateway may still carry it out). */
  signal?: AbortSignal;
}

/** Options of {@link GatewayClient.call}. */
export interface CallOptions {
  /** The task's deadline at the gateway, in milliseconds. Default 30 000 (the protocol's default). */
  timeoutMs?: number;
  /** The memory thread of the conversation: the agent finds it as `ctx.thread` (and `ctx.memory`). */
  thread?: string;
  /** `false`: not answered from the gateway's result cache (nor stored in it). */
  cache?: boolean;
  /** Aborting it rejects the call with `CANCELED` and cancels the task at the gateway. */
  signal?: AbortSignal;
  /** Called with each `task.progress` the agent reports while the call is in flight. */
  onProgress?: ProgressListener;
  /**
   * A repeated key returns the first call's output once it completed (kept for an hour), fails with a
   * retryable `CONFLICT` while the first is in flight, and runs again after a failure.
   */
  idempotencyKey?: string;
  /**
   * A delegation token (see {@link GatewayClient.delegate}): the call is made on behalf of the principal
   * that minted it. This connection must be registered as the agent the token was issued for.
   */
  delegation?: string;
  /**
   * From inside an agent's handler: the task this call is made for (`ctx.taskId`), so the gateway can
   * follow the chain of agents (loops are refused). Without it, the one task this connection holds.
   */
  parentTaskId?: string;
  /**
   * An approval given for this very call (same agent, task and data) after an earlier call timed out
   * waiting for it (`TIMEOUT` with `details.approvalId`): the call goes through once.
   */
  approvalId?: string;
  /** W3C trace context to continue (e.g. `ctx.traceparent` inside an agent's handler): the call joins that trace. */
  traceparent?: string;
  /**
   * Send the call again, within its deadline, when it is known that no agent received it: a retryable
   * error marked `dispatched: false` (the agent's instances all busy or reconnecting, a rate limit, a
   * replica without Redis), the client not connected, or a replica draining (1001) before the answer.
   * Never after an agent may have started it, so the call still runs at most once. Each retry is
   * reported as a `'call.retry'` event. Default true; `false` rejects with the first error.
   */
  transparentRetry?: boolean;
}

/** Options of {@link GatewayClient.delegate}. */
export interface DelegateOptions {
  /** Lifetime in seconds; default 300, at most 3600. */
  ttlSeconds?: number;
  /** How many agents deep the chain may go; default 1, at most 5. */
  maxDepth?: number;
  /** A token this connection's agent was given, to pass a narrower one on. */
  parent?: string;
  /**
   * The principal the agent connects as: only its connections may use the token. Default: the
   * principals of the agent's live instances (the agent must then be registered).
   */
  principal?: string;
}

/** Options of {@link GatewayClient.submit}. */
export interface SubmitOptions {
  /** The task's deadline, in milliseconds. Default 30 000 (the protocol's default). */
  timeoutMs?: number;
  /** The memory thread of the conversation: the agent finds it as `ctx.thread` (and `ctx.memory`). */
  thread?: string;
  /** A repeated key (per tenant) returns the first task instead of creating another. */
  idempotencyKey?: string;
  /** Retries of retryable failures: attempts in all and the first backoff (default: the agent's, else the cluster's). */
  retry?: { attempts: number; backoffMs?: number };
  /** How long to wait for a human if the agent escalates, and what then. */
  escalation?: { timeoutMs: number; onTimeout?: 'fail' | 'continue' };
  signal?: AbortSignal;
}

/** Options of {@link GatewayClient.waitForTask}. */
export interface WaitOptions {
  /** Called with each `task.progress` of the task (replayed ones included). */
  onProgress?: (progress: unknown) => void;
  /** Called with each `task.status` of the task, the final one included. */
  onStatus?: (event: TaskStatusEvent) => void;
  /** Stops waiting (the task goes on). */
  signal?: AbortSignal;
}

/** How an async task or workflow ended, as {@link GatewayClient.waitForTask} resolves. */
export interface TaskOutcome {
  taskId: string;
  status: 'completed' | 'failed' | 'canceled' | 'rejected';
  output?: unknown;
  error?: WireError;
}

/** The result of {@link GatewayClient.ping}. */
export interface PingResult {
  pong: true;
  /** The gateway's clock, epoch milliseconds. */
  time: number;
  /** Round trip measured by this client, in milliseconds. */
  rttMs: number;
}
