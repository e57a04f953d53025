import type { EventEmitter } from 'node:events';
import type { GatewayError, HelloResult, RequestId, TaskState, WireError } from '@openclaw/protocol';

/** Where a {@link GatewayClient} is in its life. */
export type ClientState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** Payload of `'connected'`: a connection is open and its handshake (hello, re-registration) is done. */
export interface ConnectedInfo {
  /** The `hello` result of this connection, if `hello` is on. */
  session: HelloResult | undefined;
  /** Whether this is a reconnection (agents were registered again). */
  reconnected: boolean;
}

/** Payload of `'disconnected'`: an established connection closed. */
export interface DisconnectedInfo {
  /** The WebSocket close code (1006 when the connection was lost without a close frame). */
  code: number;
  /** The close reason the gateway gave, if any. */
  reason: string;
  /** Whether the client will now try to reconnect. */
  willReconnect: boolean;
}

/** Payload of `'reconnecting'`: the client waits `delayMs`, then makes attempt number `attempt` (1-based). */
export interface ReconnectingInfo {
  attempt: number;
  delayMs: number;
  /** Why the previous attempt failed; undefined before the first attempt. */
  lastError: unknown;
}

/** Payload of `'closed'`: the client is done and will not connect again. */
export interface ClosedInfo {
  /** The close code of the last connection, if there was one. */
  code: number | undefined;
  /** Why the client stopped: `client.close()`, a close code it must not reconnect after, or exhausted attempts. */
  reason: string;
}

/** Payload of `'call.retry'`: a sync call that no agent received is sent again after `delayMs`. */
export interface CallRetryInfo {
  agent: string;
  task: string;
  /** The attempt about to be made (2 for the first retry). */
  attempt: number;
  delayMs: number;
  /** Why the previous attempt failed (retryable, with `dispatched: false`). */
  error: GatewayError;
}

/** A `task.progress` event: progress an agent reported for a task this client submitted or is waiting on. */
export interface TaskProgressEvent {
  taskId: string;
  progress: unknown;
  /** The `coordinator` request id, when the progress belongs to a sync call in flight on this connection. */
  id?: RequestId;
  /** Async tasks: the event's place in the task's event stream. */
  cursor?: string;
}

/** A `task.status` event: an async task this client submitted changed state. */
export interface TaskStatusEvent {
  taskId: string;
  status: TaskState;
  output?: unknown;
  error?: WireError;
  /** The event's place in the task's event stream: `task.subscribe` resumes after it. */
  cursor?: string;
  /** The attempt this status is about. */
  attempt?: number;
  /** In `input-required`: what the human is asked. */
  question?: unknown;
  /** For a workflow step: the workflow's task id. */
  parentId?: string;
}

/**
 * The events of a {@link GatewayClient}, with their arguments.
 *
 * `'error'` carries faults that belong to no request: frames the gateway sent that the client cannot use,
 * error responses to replies, agents that could not be registered again, listeners that threw. Unlike a
 * bare `EventEmitter`, the client never throws when `'error'` has no listener: the fault is dropped.
 */
export type GatewayClientEvents = {
  connected: [info: ConnectedInfo];
  disconnected: [info: DisconnectedInfo];
  reconnecting: [info: ReconnectingInfo];
  closed: [info: ClosedInfo];
  error: [error: Error];
  /** A sync call is sent again (see `CallOptions.transparentRetry`). */
  'call.retry': [info: CallRetryInfo];
  'task.progress': [event: TaskProgressEvent];
  'task.status': [event: TaskStatusEvent];
  /** This client's sync call waits for an approval (`id` is the call's request id). */
  'approval.required': [event: ApprovalEvent];
  /** To principals with `approval:read`: a message of the tenant was parked for approval. */
  'approval.requested': [event: ApprovalEvent];
  /** To principals with `approval:read`: an approval changed (a decision, approved, rejected, expired, used). */
  'approval.updated': [event: ApprovalEvent];
};

/** An approval event: the approval's fields (see the protocol reference), with the event's name. */
export interface ApprovalEvent {
  event: 'approval.required' | 'approval.requested' | 'approval.updated';
  approvalId: string;
  taskId: string;
  status?: 'pending' | 'approved' | 'rejected' | 'expired' | 'consumed';
  [field: string]: unknown;
}

/**
 * @internal Emits a client's events for the parts that make it up (connection, requests, agents): a
 * listener that throws is reported on `'error'` instead of escaping into the socket's event loop, and
 * `'error'` without a listener drops the fault instead of throwing.
 */
export class ClientEventSink {
  constructor(private readonly emitter: EventEmitter<GatewayClientEvents>) {}

  /** Emits `event`; never throws. */
  emit<K extends keyof GatewayClientEvents>(event: K, ...args: GatewayClientEvents[K]): void {
    this.guard(() => (this.emitter.emit as (name: K, ...rest: GatewayClientEvents[K]) => boolean)(event, ...args));
  }

  /** Runs `fn`, reporting what it throws. */
  guard(fn: () => unknown): void {
    try {
      fn();
    } catch (error) {
      this.reportError(error);
    }
  }

  /** Emits `'error'` if anyone listens; a bare EventEmitter would throw instead. Never throws. */
  reportError(error: unknown): void {
    if (this.emitter.listenerCount('error') === 0) return;
    try {
      this.emitter.emit('error', error instanceof Error ? error : new Error(String(error)));
    } catch {
      // An 'error' listener that throws has nowhere left to report to.
    }
  }
}
