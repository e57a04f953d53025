/**
 * The OpenClaw Gateway wire protocol, version 1: zod schemas for every frame and action, error and
 * close codes. The JSON Schema rendering of these schemas ships in `schema/` for SDKs in other languages.
 *
 * @example
 * import { ACTION_PARAMS, ERROR_CODES } from '@openclaw/protocol';
 * const parsed = ACTION_PARAMS.coordinator.safeParse({ agent: 'my-agent', task: 'process-data' });
 */

export {
  ACTION_PARAMS,
  type ActionName,
  type ActionParams,
  AGENT_REPLY_ACTIONS,
  AgentErrorSchema,
  AgentsListParamsSchema,
  CoordinatorParamsSchema,
  DelegateParamsSchema,
  HelloParamsSchema,
  isActionName,
  MAX_TIMEOUT_MS,
  PingParamsSchema,
  RegisterParamsSchema,
  TaskCancelParamsSchema,
  TaskErrorParamsSchema,
  TaskGetParamsSchema,
  TaskListParamsSchema,
  TaskProgressParamsSchema,
  TaskRespondParamsSchema,
  TaskResultParamsSchema,
  TaskRetryParamsSchema,
  TaskSubscribeParamsSchema,
  WorkflowStartParamsSchema,
} from './actions';
export {
  CloseCode,
  ERROR_CODES,
  type ErrorCode,
  RECONNECTABLE_CLOSE_CODES,
  RETRYABLE_BY_DEFAULT,
} from './error-codes';
export {
  type ErrorResponse,
  ErrorResponseSchema,
  type Event,
  EventSchema,
  type OkResponse,
  OkResponseSchema,
  type RequestEnvelope,
  RequestEnvelopeSchema,
  type Response,
  ResponseSchema,
  type ServerFrame,
  TaskCancelEventSchema,
  type TaskEvent,
  TaskEventSchema,
  type TaskOrigin,
  TaskOriginSchema,
  TaskProgressEventSchema,
  TaskStatusEventSchema,
} from './frames';
export { GatewayError, type GatewayErrorOptions } from './gateway-error';
export {
  AgentNameSchema,
  type RequestId,
  RequestIdSchema,
  TASK_STATES,
  TaskIdSchema,
  TaskNameSchema,
  type TaskState,
  TaskStateSchema,
  TERMINAL_TASK_STATES,
  type WireError,
  WireErrorSchema,
} from './primitives';
export {
  type AgentInfo,
  AgentInfoSchema,
  AgentsListResultSchema,
  type CoordinatorResult,
  CoordinatorResultSchema,
  type DelegateResult,
  DelegateResultSchema,
  type HelloResult,
  HelloResultSchema,
  PingResultSchema,
  type PrincipalInfo,
  PrincipalSchema,
  type RegisterResult,
  RegisterResultSchema,
  TaskCancelResultSchema,
  type TaskRecord,
  TaskRecordSchema,
} from './results';
export { describeIssues, type FieldIssue } from './validation';
export { AGENT_NAME_PATTERN, DEFAULT_LIMITS, PROTOCOL_VERSION } from './version';
export {
  type AgentStep,
  AgentStepSchema,
  BranchSchema,
  type EscalationPolicy,
  EscalationPolicySchema,
  type FailurePolicy,
  FailurePolicySchema,
  type Join,
  JoinSchema,
  joinCount,
  MAX_WORKFLOW_DEADLINE_MS,
  type ParallelStep,
  ParallelStepSchema,
  type RetryPolicy,
  RetryPolicySchema,
  StepIdSchema,
  type WorkflowDefinition,
  WorkflowDefinitionSchema,
  type WorkflowStep,
  WorkflowStepSchema,
} from './workflow';
