import type {
  AgentRegistry,
  ApiKeyStore,
  Approvals,
  AsyncTasks,
  AuditLog,
  Authorizer,
  CallRecords,
  DelegationIssuer,
  Logger,
  MemoryStore,
  ResultCache,
  SchemaStore,
  StateStore,
  TaskDispatcher,
} from '@openclaw/core';
import { traceparentOf } from '@openclaw/core';
import type { ActionParams, RequestAction } from '@openclaw/protocol';
import type { AgentHost } from './agent-host';
import type { ClusterSnapshotFeed } from './cluster-snapshot-feed';
import type { ReplicaCounters } from './replica-counters';
import type { Session } from './session';
import type { StateWatches } from './state-watches';
import type { TaskEventRouter } from './task-events';
import type { TaskCaller, TaskOperations } from './task-operations';

/** What the handlers need from the replica. */
export interface HandlerContext {
  replicaId: string;
  registry: AgentRegistry;
  dispatcher: TaskDispatcher;
  store: CallRecords;
  /** Async tasks and workflows (the durable task queue). */
  asyncTasks: AsyncTasks;
  /** The task operations both transports share. */
  tasks: TaskOperations;
  /** Messages waiting for approval. */
  approvals: Approvals;
  /** Connections watching the cluster (`cluster.watch`). */
  snapshotFeed: ClusterSnapshotFeed;
  /** Agents' declared input schemas. */
  schemaStore: SchemaStore;
  taskEvents: TaskEventRouter;
  /** Shared state of the tenants (`state.*`). */
  state: StateStore;
  /** Outputs of cacheable tasks (`register` policies, `cache.invalidate`). */
  resultCache: ResultCache;
  /** Conversation threads of the tenants (`memory.*`). */
  memory: MemoryStore;
  /** Connections on this replica that watch namespaces (`state.watch`). */
  stateWatches: StateWatches;
  agents: AgentHost;
  metrics: ReplicaCounters;
  audit: AuditLog;
  authorizer: Authorizer;
  /** Mints and reads delegation tokens; absent when delegation is off. */
  delegations: DelegationIssuer | undefined;
  /** Stored API keys (revoked minters end their delegations); absent without OPENCLAW_API_KEY_SECRET. */
  apiKeys: ApiKeyStore | undefined;
  /** Refuse requests while the audit trail cannot be written (OPENCLAW_AUDIT_REQUIRED). */
  auditRequired: boolean;
  /** Record call data in audit entries (OPENCLAW_AUDIT_PAYLOADS). */
  auditPayloads: boolean;
  logger: Logger;
  limits: {
    maxFrameBytes: number;
    maxJsonDepth: number;
    heartbeatMs: number;
    defaultTimeoutMs: number;
    maxInFlightPerConnection: number;
  };
}

/** One request being handled: its session and its id (for events tied to it). */
export interface RequestScope {
  session: Session;
  id: string | number | null;
}

/** The handler of one request action. */
export type Handler<A extends RequestAction> = (
  ctx: HandlerContext,
  scope: RequestScope,
  params: ActionParams<A>,
) => Promise<unknown> | unknown;

/** The caller of a task operation on this connection, in the trace of the request. */
export function callerOf(session: Session): TaskCaller {
  const agent = firstAgent(session);
  const traceparent = traceparentOf();
  return {
    principal: session.principal,
    ...(agent === undefined ? {} : { agent }),
    ...(traceparent === undefined ? {} : { traceparent }),
  };
}

/** The first agent this connection serves, if any: the caller of its calls as an agent. */
export function firstAgent(session: Session): string | undefined {
  for (const name of session.instances.values()) return name;
  return undefined;
}
