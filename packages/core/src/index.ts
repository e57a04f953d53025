/**
 * Server-side building blocks shared by the gateway and the worker, one folder per domain.
 *
 * @example
 * import { loadGatewayConfig, RedisKeys, AgentRegistry } from '@openclaw/core';
 */

export { GatewayError, type GatewayErrorOptions } from '@openclaw/protocol';
export type { AuditEntry } from './audit/audit-entry';
export { AuditLog } from './audit/audit-log';
export { type AuditReport, renderAuditReport, summarizeAudit } from './audit/audit-report';
export type { AuditVerification } from './audit/audit-verifier';
export { ApiKeyAuthenticator } from './auth/api-key-authenticator';
export { type ApiKeyInfo, ApiKeyStore } from './auth/api-key-store';
export { AuthLockout, clientAddress } from './auth/auth-lockout';
export { Authorizer, deniedPermission } from './auth/authorizer';
export { ConnectionLimiter } from './auth/connection-limiter';
export { type Delegation, DelegationIssuer } from './auth/delegation';
export { JwtAuthenticator } from './auth/jwt-authenticator';
export { type Explanation, grantOf, Policy, PolicyError } from './auth/policy';
export { grantsOf, type Principal, principalOf } from './auth/principal';

export { type Authenticator, NoAuthenticator } from './auth/static-key-authenticator';
export { CLUSTER_ADMIN, isOperator, OPERATORS_TENANT, UNAUTHENTICATED_TENANT } from './auth/tenancy';
export type { BusMessage, TaskAbortMessage, TaskDispatchMessage, TaskReplyMessage } from './bus/bus-message';
export type { BusTopics, ClusterBus, TopicHandler } from './bus/cluster-bus';
export { InMemoryBus, InMemoryBusNetwork } from './bus/in-memory-bus';
export { RedisClusterBus } from './bus/redis-cluster-bus';
export {
  ConfigError,
  type GatewayConfig,
  loadGatewayConfig,
  loadWorkerConfig,
  type WorkerConfig,
} from './config/gateway-config';
export { parseRegionPeers, type RegionPeer } from './config/region-peers';
export { GATEWAY_SETTINGS, type Setting, WORKER_SETTINGS } from './config/settings';
export { TIMINGS } from './config/timings';
export { toWireError } from './errors/gateway-error';
export { type Approval, approvalHash, publicApproval } from './governance/approval-record';
export { Approvals } from './governance/approvals';
// The extension point for operators' own validators (docs/governance.md, "Custom validators").
export { type CustomValidator, loadCustomValidators } from './governance/custom-validators';
export { AwaitingApproval, GovernanceGate } from './governance/governance-gate';
export { type SchemaStore, schemaProblem, storeSchemas } from './governance/input-schemas';
export { GovernancePipeline, validatorsOf } from './governance/pipeline';
export { scan } from './governance/scanners';
export type {
  Decision,
  Direction,
  GovernedMessage,
  Tier,
  Validator,
  ValidatorAnswer,
  ValidatorStats,
} from './governance/validator';
export { valueAt } from './matching/value-path';
export { ClusterNode } from './node/cluster-node';
export { runService } from './process/run-service';
export { LuaScript, type ScriptArg } from './redis/lua-script';
export {
  connectRedis,
  createRedisConnection,
  isCluster,
  type RedisClient,
  RedisReadiness,
  redactRedisUrl,
} from './redis/redis-connection';
export { RedisKeys } from './redis/redis-keys';
export {
  type ForwardedAnswer,
  type ForwardedCall,
  ForwardedCallSchema,
  RegionLink,
} from './regions/region-link';
export { AgentRegistry } from './registry/agent-registry';
export { type CallLimits, qualifiedAgent } from './registry/agent-routing';
export { MemoryStore } from './state/memory-store';
export { MAX_LISTED_NAMESPACES, StateStore } from './state/state-store';
export { agentProtocol, checkAgentUrl } from './tasks/agent-url';
export { asyncTaskDefaults } from './tasks/async-task-defaults';
export { AsyncTasks } from './tasks/async-tasks';
export { CallRecords, publicTaskRecord } from './tasks/call-records';
export type { TaskCaller } from './tasks/dispatch-request';
export { HttpAgentClient } from './tasks/http-agent-client';
export { isTerminal, type LedgerTask, publicLedgerRecord, storableJson } from './tasks/ledger-record';
export type { RouteKind } from './tasks/pending-calls';
export {
  type CachePolicy,
  type CacheStats,
  canonicalJson,
  ResultCache,
} from './tasks/result-cache';
export { canSee, type FoundTask, publicRecord, TaskDirectory } from './tasks/task-directory';
export { TaskDispatcher } from './tasks/task-dispatcher';
export { type BegunAttempt, principalDigest, TaskLedger, type TaskOwner } from './tasks/task-ledger';
export { type EnqueueOptions, TASK_QUEUE_NAME, type TaskJobData, TaskQueue } from './tasks/task-queue';
export type { AsyncTaskRequest, Submitted } from './tasks/task-submissions';
export type { TaskViewer } from './tasks/task-viewer';
export { createLogger, type Logger, silentLogger } from './telemetry/logger';
export { LATENCY_BUCKETS, type MetricSources, ProcessMetrics, serveMetrics } from './telemetry/metrics';

export { contextOf, inSpan, startTracing, stopTracing, traceparentOf, tracingActive } from './telemetry/tracing';
