/**
 * The TypeScript client of the OpenClaw Gateway: call agents, serve agents, and follow tasks over one
 * WebSocket connection that reconnects by itself.
 *
 * @example
 * import { connect } from '@openclaw/sdk';
 * const client = await connect({ url: 'ws://127.0.0.1:18789', apiKey: 'my-key' });
 * const output = await client.call('summarizer', 'summarize', { text: 'hello' });
 */

// Protocol types that appear in this package's signatures, so callers need no second import.
export type {
  AgentInfo,
  ErrorCode,
  HelloResult,
  RegisterResult,
  TaskRecord,
  TaskState,
  WireError,
  WorkflowDefinition,
} from '@openclaw/protocol';
export {
  AgentHandle,
  type AgentOptions,
  type TaskContext,
  type TaskHandler,
  type TaskOrigin,
} from './agent-handle';
export { type BackoffOptions, backoffCap, backoffDelay } from './backoff';
export type {
  ApprovalEvent,
  CallRetryInfo,
  ClientState,
  ClosedInfo,
  ConnectedInfo,
  DisconnectedInfo,
  GatewayClientEvents,
  ReconnectingInfo,
  TaskProgressEvent,
  TaskStatusEvent,
} from './client-events';
export type { GatewayClientOptions, ReconnectOptions } from './client-options';
export type {
  CallOptions,
  DelegateOptions,
  PingResult,
  RequestOptions,
  SubmitOptions,
  TaskOutcome,
  WaitOptions,
} from './client-requests';
export { GatewayError, type GatewayErrorOptions, InputRequired, UnexpectedFrameError } from './errors';
export { CALL_GRACE_MS, connect, GatewayClient } from './gateway-client';
export type { ProgressListener } from './pending-requests';
export {
  MemoryClient,
  type MemoryEntry,
  type MemoryEntryInput,
  type StateChange,
  StateClient,
  type StateEntry,
  type StateListItem,
  type StateWatch,
  type ThreadMemory,
} from './shared-state';
export { SDK_VERSION } from './version';
