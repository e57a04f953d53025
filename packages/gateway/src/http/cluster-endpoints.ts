import { isOperator } from '@openclaw/core';
import { type Endpoints, noEndpoint, requireClusterWide } from './endpoint';
import { send } from './http-io';

/**
 * Views of the replica and the cluster: `GET /status` (this replica; every tenant sees its own
 * agents, operators all of them), `GET /v1/cluster` (`cluster:read`: the tenant's view of the whole
 * cluster), and the views that span every tenant, for operators: `GET /v1/workers`,
 * `GET /v1/cluster/metrics`, `GET /v1/metrics` (this replica's counters).
 */
export const clusterEndpoints: Endpoints = async (replica, request) => {
  const { res, principal, path, method } = request;
  if (method !== 'GET') throw noEndpoint(request);
  switch (path) {
    case '/status': {
      const everyTenant = isOperator(principal) && replica.authorizer.can(principal, 'cluster:read');
      return send(res, 200, replica.status(everyTenant ? undefined : principal.tenant));
    }
    case '/v1/cluster': {
      replica.authorizer.require(principal, 'cluster:read');
      const audit = replica.authorizer.can(principal, 'audit:read');
      return send(res, 200, await replica.clusterStatus(principal.tenant, { audit }));
    }
    case '/v1/workers':
      requireClusterWide(replica, principal, 'the workers');
      return send(res, 200, await replica.workers());
    case '/v1/cluster/metrics': {
      requireClusterWide(replica, principal, "the cluster's metrics");
      const [replicas, queue] = await Promise.all([
        replica.replicaReports.replicas(),
        replica.asyncTasks.queue.counts().catch(() => undefined),
      ]);
      return send(res, 200, { at: Date.now(), replicas, queue: queue ?? null });
    }
    case '/v1/metrics':
      requireClusterWide(replica, principal, "this replica's metrics");
      return send(res, 200, replica.metricsSnapshot());
    default:
      throw noEndpoint(request);
  }
};
