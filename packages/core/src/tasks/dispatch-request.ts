import type { TaskOrigin } from '@openclaw/protocol';
import type { Approval } from '../governance/approval-record';
import type { CallLimits } from '../registry/agent-routing';

/** Who asked for a task. */
export interface TaskCaller {
  principal: string;
  tenant: string;
  /** The agent the caller acts as, when an agent calls another. */
  agent?: string;
  /** Cluster-wide request limits of this caller (none if absent). */
  limits?: CallLimits;
  /** For a delegated call: the principal it is made for, and the chain of principals that passed it on. */
  onBehalfOf?: string;
  chain?: string[];
  /** The caller's roles (for governance rules). */
  roles?: readonly string[];
  /** The agents the call passed through, oldest first, the calling agent last (for loop detection). */
  agents?: string[];
  /** For a delegated call: the depth of its delegation. */
  delegationDepth?: number;
}

/** A sync task to route. */
export interface DispatchRequest {
  agent: string;
  task: string;
  data: unknown;
  timeoutMs: number;
  caller: TaskCaller;
  traceparent?: string;
  /** Receives the agent's `task.progress` values. */
  onProgress?: (progress: unknown) => void;
  /**
   * The caller's key for this call: a repeated key returns the first call's result while it is kept
   * (an hour), gets `CONFLICT` while the first is in flight, and runs again if the first failed.
   */
  idempotencyKey?: string;
  /** The task's id, when it has one already (an attempt of an async task). Default: a new id. */
  taskId?: string;
  /** Which attempt this is, as the agent is told. Default 1. */
  attempt?: number;
  /** A governance validator's own call (to a validator agent): not judged again. */
  skipGovernance?: boolean;
  /**
   * How a message that needs an approval waits: `wait` (a sync call, until its deadline) or `park`
   * (an async attempt: it throws `AwaitingApproval`). Without it, such a message is refused.
   */
  approval?: DispatchApproval;
  /**
   * Whether to keep the sync task record in Redis (default true). Async tasks have their own
   * ledger, written by the worker.
   */
  record?: boolean;
  /**
   * Whether the result cache may answer it (a sync `coordinator` call that did not say `cache:
   * false`). Default: no (async attempts, validator calls).
   */
  cache?: boolean;
  /** The memory thread of the conversation the call belongs to (the agent finds it in its `task` event). */
  thread?: string;
  /** The region a forwarded call came from: it runs here or nowhere (never sent on to a third). */
  fromRegion?: string;
}

/** How a dispatched message that needs an approval waits for it. */
export interface DispatchApproval {
  mode: 'wait' | 'park';
  /** An approval given before for this very message, used instead of asking again. */
  approvalId?: string;
  /** Told when the call starts waiting for an approval. */
  onPending?: (approval: Approval) => void;
}

/** A completed call found by its idempotency key, returned instead of running it again. */
export interface ReplayedCall {
  taskId: string;
  output: unknown;
}

/** A dispatched task: its id at once, its output when it ends. */
export interface DispatchHandle {
  taskId: string;
  /** True when an idempotency key matched a completed call: `output` is that call's output. */
  replayed?: boolean;
  /** True when the result cache answered: a stored output, or an identical call's in flight. */
  cached?: boolean;
  /** Resolves with the agent's output; rejects with a {@link GatewayError}. Always settles by the deadline. */
  output: Promise<unknown>;
}

/** The caller as the agent is told of it (`from` of the dispatch). */
export function originOf(caller: TaskCaller): TaskOrigin {
  const from: TaskOrigin = { principal: caller.principal };
  if (caller.agent !== undefined) from.agent = caller.agent;
  if (caller.onBehalfOf !== undefined) from.onBehalfOf = caller.onBehalfOf;
  if (caller.chain !== undefined) from.chain = caller.chain;
  if (caller.agents !== undefined && caller.agents.length > 0) from.agents = caller.agents;
  return from;
}
