/**
 * The gateway replica: HTTP and WebSocket on one port, attached to the cluster through Redis.
 *
 * @example
 * import { runGateway } from '@openclaw/gateway';
 * await runGateway({ flags: { port: '18789' } });
 */

export { Gateway, type GatewayOptions } from './gateway';
export { HttpAgentBodySchema } from './http/agent-endpoints';
export { isOriginAllowed } from './origin';
export { LATENCY_WINDOW, type LatencySummary, type MetricsSnapshot, ReplicaCounters } from './replica-counters';
export { type RedisHealth, type ReplicaReport, ReplicaReports } from './replica-reports';
export type { GatewayStatus, Readiness } from './replica-status';
export { type RunGatewayOptions, runGateway } from './run-gateway';
export { GATEWAY_VERSION } from './version';
