/**
 * The gateway replica: HTTP and WebSocket on one port, attached to the cluster through Redis.
 *
 * @example
 * import { runGateway } from '@openclaw/gateway';
 * await runGateway({ flags: { port: '18789' } });
 */
export { ClusterView, REPORT_INTERVAL_MS, type RedisHealth, type ReplicaReport } from './cluster-view';
export { Gateway, type GatewayOptions } from './gateway';
export { GatewayMetrics, LATENCY_WINDOW, type LatencySummary, type MetricsSnapshot } from './gateway-metrics';
export { HttpAgentBodySchema } from './http-api';
export { isOriginAllowed } from './origin';
export type { GatewayStatus, Readiness } from './replica-status';
export { type RunGatewayOptions, runGateway } from './run-gateway';
export { GATEWAY_VERSION } from './version';
