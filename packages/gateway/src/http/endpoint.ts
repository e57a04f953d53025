import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type AgentRegistry,
  type ApiKeyStore,
  type Approvals,
  type AsyncTasks,
  type AuditLog,
  type Authorizer,
  CLUSTER_ADMIN,
  type GatewayConfig,
  GatewayError,
  type HttpAgentClient,
  isOperator,
  type Logger,
  OPERATORS_TENANT,
  type Principal,
} from '@openclaw/core';
import type { ConnectionAdmission } from '../admission';
import type { ClusterStatus } from '../cluster-status';
import type { GatewayPrometheus } from '../gateway-prometheus';
import type { ReplicaReports } from '../replica-reports';
import type { GatewayStatus, Readiness } from '../replica-status';
import type { TaskOperations } from '../task-operations';
import type { A2aEndpointReplica } from './a2a-endpoint';
import type { McpEndpointReplica } from './mcp-endpoint';
import type { RegionEndpointsReplica } from './region-endpoints';
import type { StateEndpointsReplica } from './state-endpoints';

/** What the HTTP API needs of its replica: its parts and its status, nothing of its sockets. */
export interface HttpApiReplica
  extends RegionEndpointsReplica,
    StateEndpointsReplica,
    McpEndpointReplica,
    A2aEndpointReplica {
  readonly config: GatewayConfig;
  readonly logger: Logger;
  readonly audit: AuditLog;
  readonly authorizer: Authorizer;
  readonly approvals: Approvals;
  /** Stored API keys, when `OPENCLAW_API_KEY_SECRET` is set. */
  readonly apiKeys: ApiKeyStore | undefined;
  readonly registry: AgentRegistry;
  /** Calls HTTP agents and outside MCP servers (and lists an MCP server's tools at registration). */
  readonly httpAgents: HttpAgentClient;
  readonly asyncTasks: AsyncTasks;
  readonly tasks: TaskOperations;
  readonly prometheus: GatewayPrometheus;
  readonly replicaReports: ReplicaReports;
  readonly admission: ConnectionAdmission;
  readiness(): Readiness;
  status(tenant?: string): GatewayStatus;
  metricsSnapshot(): unknown;
  workers(): Promise<Record<string, string>[]>;
  clusterStatus(tenant: string, options?: { audit?: boolean }): Promise<ClusterStatus>;
  /** Closes the connections of revoked or expired credentials now (after a revocation). */
  checkCredentials(): Promise<void>;
}

/** An authenticated API request. */
export interface ApiRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly principal: Principal;
  /** The path, without its query. */
  readonly path: string;
  readonly method: string;
  readonly query: URLSearchParams;
}

/** A group of endpoints: answers the request, or throws a `GatewayError` (answered with its status). */
export type Endpoints = (replica: HttpApiReplica, request: ApiRequest) => Promise<void>;

/** `NOT_FOUND` for a path or method no endpoint serves. */
export function noEndpoint({ method, path }: Pick<ApiRequest, 'method' | 'path'>): GatewayError {
  return new GatewayError('NOT_FOUND', `no endpoint ${method} ${path}`);
}

/**
 * Refuses a principal that does not administer the whole cluster.
 * @param what what is asked for, for the message.
 */
export function requireClusterAdmin(replica: HttpApiReplica, principal: Principal, what: string): void {
  if (replica.authorizer.can(principal, CLUSTER_ADMIN)) return;
  throw new GatewayError(
    'FORBIDDEN',
    `missing permission '${CLUSTER_ADMIN}': ${what} is cluster administration, held only by administrators of the operators' tenant '${OPERATORS_TENANT}'`,
    { details: { permission: CLUSTER_ADMIN } },
  );
}

/** Refuses a principal that may not see views spanning every tenant (`cluster:read` in the operators' tenant). */
export function requireClusterWide(replica: HttpApiReplica, principal: Principal, what: string): void {
  replica.authorizer.require(principal, 'cluster:read');
  if (isOperator(principal)) return;
  throw new GatewayError(
    'FORBIDDEN',
    `${what} span every tenant: only principals of the operators' tenant '${OPERATORS_TENANT}' with 'cluster:read' see them`,
  );
}
