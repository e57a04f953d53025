/**
 * Server-side building blocks shared by the gateway and the worker, one folder per domain.
 *
 * @example
 * import { loadGatewayConfig, RedisKeys, AgentRegistry } from '@openclaw/core';
 */

export { GatewayError, type GatewayErrorOptions } from '@openclaw/protocol';
export {
  type AuditEntry,
  type AuditEvent,
  AuditLog,
  type AuditLogOptions,
  type AuditVerification,
} from './audit/audit-log';
export { type AuditReport, renderAuditReport, summarizeAudit } from './audit/audit-report';
export { ApiKeyAuthenticator } from './auth/api-key-authenticator';
export { API_KEY_PREFIX, type ApiKeyInfo, ApiKeyStore, type NewApiKey } from './auth/api-key-store';
export { AuthLockout, type AuthLockoutOptions, clientAddress } from './auth/auth-lockout';
export { Authorizer, type StoredPolicy } from './auth/authorizer';
export { CONNECTION_ENTRY_TTL_MS, ConnectionLimiter } from './auth/connection-limiter';
export { type Delegation, DelegationIssuer, type MintRequest } from './auth/delegation';
export { JwtAuthenticator, type JwtOptions } from './auth/jwt-authenticator';
export {
  type Explanation,
  grantOf,
  Policy,
  type PolicyDocument,
  PolicyError,
  type PolicyProblem,
  PolicySchema,
} from './auth/policy';
export {
  ANONYMOUS,
  grantsOf,
  hasPermission,
  type Principal,
  type PrincipalGrants,
  principalOf,
} from './auth/principal';
export { BUILT_IN_ROLES, permissionsOf, ROLE_NAMES } from './auth/roles';
export {
  type Authenticator,
  extractCredential,
  NoAuthenticator,
  type RequestCredentials,
  StaticKeyAuthenticator,
} from './auth/static-key-authenticator';
export {
  CLUSTER_ADMIN,
  isOperator,
  OPERATORS_TENANT,
  outsideTenantReach,
  UNAUTHENTICATED_TENANT,
} from './auth/tenancy';
export {
  type BusMessage,
  BusMessageSchema,
  CanaryMessageSchema,
  type OutgoingBusMessage,
  type TaskAbortMessage,
  TaskAbortMessageSchema,
  type TaskCancelRequestMessage,
  TaskCancelRequestMessageSchema,
  type TaskDispatchMessage,
  TaskDispatchMessageSchema,
  type TaskReplyMessage,
  TaskReplyMessageSchema,
} from './bus/bus-message';
export { type BusHandler, BusStats, type ClusterBus } from './bus/cluster-bus';
export { RedisClusterBus, type RedisClusterBusOptions } from './bus/redis-cluster-bus';
export {
  ConfigError,
  type ConfigSources,
  type GatewayConfig,
  isLoopbackHost,
  loadGatewayConfig,
  loadWorkerConfig,
  type WorkerConfig,
} from './config/gateway-config';
export { GATEWAY_SETTINGS, type Setting, WORKER_SETTINGS } from './config/settings';
export { fromWireError, toWireError } from './errors/gateway-error';
export {
  APPROVAL_RETENTION_MS,
  type Approval,
  type ApprovalChange,
  type ApprovalDecision,
  type ApprovalRequirement,
  type ApprovalStatus,
  Approvals,
  approvalHash,
  type ConsumeResult,
  DEFAULT_APPROVAL,
  type Decider,
  publicApproval,
} from './governance/approvals';
export { type BudgetStore, budgetValidators } from './governance/budgets';
export { type CustomValidator, loadCustomValidators } from './governance/custom-validators';
export {
  type ApprovalContext,
  AwaitingApproval,
  auditVerdicts,
  GovernanceGate,
  type GovernanceGateOptions,
  type VerdictListener,
  validatorAgents,
} from './governance/governance-gate';
export {
  type BudgetConfig,
  type GovernancePolicy,
  GovernancePolicySchema,
  type ModelValidatorConfig,
  type Rule,
} from './governance/governance-policy';
export { inputSchemaValidator, type SchemaStore, schemaProblem, storeSchemas } from './governance/input-schemas';
export { type ModelDeps, ModelVerdictSchema, modelQuestion } from './governance/model-validators';
export {
  type Decision,
  type Direction,
  type GovernanceOutcome,
  GovernancePipeline,
  type GovernedMessage,
  glob,
  maskPaths,
  ruleMatches,
  TIER_BUDGET_MS,
  type Tier,
  type Validator,
  type ValidatorAnswer,
  type ValidatorStats,
  type Verdict,
  validatorsOf,
  valueAt,
} from './governance/pipeline';
export { ibanValid, luhn, PII_DETECTORS, SECRET_DETECTORS, scan } from './governance/scanners';
export { ClusterNode, type ClusterNodeOptions, STARTUP_REDIS_TIMEOUT_MS } from './node/cluster-node';
export { runService, type ServiceSpec } from './process/run-service';
export {
  connectRedis,
  createRedisConnection,
  isRedisReady,
  type RedisConnectionOptions,
  type RedisRole,
  redactRedisUrl,
} from './redis/redis-connection';
export { RedisKeys } from './redis/redis-keys';
export {
  AgentRegistry,
  type AgentRegistryOptions,
  type CallLimits,
  type HttpAgentRegistration,
  type InstanceRegistration,
  type PickResult,
  qualifiedAgent,
} from './registry/agent-registry';
export { checkAgentUrl, isPrivateAddress } from './tasks/agent-url';
export {
  type AsyncTaskDefaults,
  type AsyncTaskRequest,
  type AsyncTaskSettings,
  AsyncTasks,
  type AsyncTasksOptions,
  asyncTaskDefaults,
  childrenOf,
  enqueueOptions,
  type Submitted,
  type TaskViewer,
} from './tasks/async-tasks';
export { HttpAgentClient, type HttpAgentClientOptions, type HttpAgentRequest } from './tasks/http-agent-client';
export {
  type DispatchHandle,
  type DispatchRequest,
  type RouteKind,
  type TaskCaller,
  TaskDispatcher,
  type TaskDispatcherOptions,
} from './tasks/task-dispatcher';
export {
  isTerminal,
  type LedgerTask,
  MAX_TASK_EVENTS,
  principalDigest,
  publicLedgerRecord,
  type StoredTaskEvent,
  storableJson,
  type TaskKind,
  TaskLedger,
  type TaskResponse,
  type Transition,
  type TransitionResult,
} from './tasks/task-ledger';
export {
  type EnqueueOptions,
  type JobState,
  TASK_QUEUE_NAME,
  type TaskJobData,
  TaskQueue,
} from './tasks/task-queue';
export {
  MAX_STORED_OUTPUT_BYTES,
  type NewTask,
  publicTaskRecord,
  type StoredTask,
  TASK_RECORD_TTL_MS,
  TaskStore,
} from './tasks/task-store';
export { createLogger, type Logger, type LoggerOptions, silentLogger } from './telemetry/logger';
export { LATENCY_BUCKETS, type MetricSources, ProcessMetrics, serveMetrics } from './telemetry/metrics';
export { formatLogLine, type LineSink, type LogFormat, resolveLogFormat } from './telemetry/pretty-log';
export { childTraceparent, isTraceparent } from './telemetry/trace-context';
export {
  contextOf,
  inSpan,
  type SpanOptions,
  startTracing,
  stopTracing,
  traceparentOf,
  tracer,
  tracingActive,
  tracingRequested,
} from './telemetry/tracing';
