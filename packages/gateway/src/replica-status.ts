import type { LocalAgentStatus } from './agent-host';

/** Readiness of a replica, as `GET /readyz` reports it. */
export interface Readiness {
  ready: boolean;
  redis: boolean;
  bus: boolean;
  draining: boolean;
}

/** One replica's own status, as `GET /status` reports it. */
export interface GatewayStatus {
  replicaId: string;
  version: string;
  startedAt: string;
  uptimeMs: number;
  ready: boolean;
  draining: boolean;
  connections: number;
  inFlight: number;
  agents: LocalAgentStatus[];
}
