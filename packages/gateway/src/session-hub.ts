import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  type ApiKeyStore,
  type AuditLog,
  type CallLimits,
  type ConnectionLimiter,
  clientAddress,
  contextOf,
  type GatewayConfig,
  GatewayError,
  inSpan,
  type Logger,
  type Principal,
  TIMINGS,
} from '@openclaw/core';
import { CloseCode } from '@openclaw/protocol';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { type WebSocket, WebSocketServer } from 'ws';
import type { ConnectionAdmission } from './admission';
import type { AgentHost } from './agent-host';
import type { ClusterSnapshotFeed } from './cluster-snapshot-feed';
import { handleFrame } from './frame-handler';
import type { HandlerContext } from './handler-context';
import type { ReplicaCounters } from './replica-counters';
import { protocolCloseCode, Session } from './session';
import type { TaskEventRouter } from './task-events';

/** What the hub needs of its replica. */
export interface SessionHubDeps {
  config: GatewayConfig;
  logger: Logger;
  audit: AuditLog;
  admission: ConnectionAdmission;
  /** Per-principal connection slots, cluster-wide. */
  connections: ConnectionLimiter;
  counters: ReplicaCounters;
  taskEvents: TaskEventRouter;
  snapshotFeed: ClusterSnapshotFeed;
  agents: AgentHost;
  apiKeys: ApiKeyStore | undefined;
  /** What the action handlers of every connection share. */
  context: HandlerContext;
  /** Whether Redis takes commands now (the revoked-key check reads it). */
  redisReady(): boolean;
}

/**
 * The replica's WebSocket connections: upgrades (checked by the admission, traced, counted against
 * the connection cap while they are checked), the sessions they become, their frames, pings and
 * closes, and the periodic checks of live connections (revoked or expired credentials, connection
 * slots kept alive in Redis).
 */
export class SessionHub {
  readonly sessions = new Set<Session>();
  /** Upgrades past the connection cap check and not yet sessions (they count against the cap). */
  private admitting = 0;
  private readonly wss: WebSocketServer;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly deps: SessionHubDeps) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: deps.config.maxFrameBytes,
      // Off on purpose: permessage-deflate fragments memory and has a history of leaks under load.
      perMessageDeflate: false,
      clientTracking: false,
    });
  }

  /** Connections held or being admitted: what the connection cap counts. */
  get connectionCount(): number {
    return this.sessions.size + this.admitting;
  }

  /** Live connections that serve an agent, and the others. */
  byRole(): { agent: number; client: number } {
    let agent = 0;
    for (const session of this.sessions) if (session.instances.size > 0) agent += 1;
    return { agent, client: this.sessions.size - agent };
  }

  /** Bytes queued for slow readers, in all and on the slowest connection. */
  outboundBuffered(): { bytes: number; largest: number } {
    let bytes = 0;
    let largest = 0;
    for (const session of this.sessions) {
      const queued = session.socket.bufferedAmount;
      bytes += queued;
      largest = Math.max(largest, queued);
    }
    return { bytes, largest };
  }

  /** Starts the pings and the periodic checks of live connections. */
  start(): void {
    const every = (ms: number, run: () => void): void => {
      this.timers.push(setInterval(run, ms).unref());
    };
    every(this.deps.config.heartbeatMs, () => this.heartbeat());
    every(TIMINGS.credentialCheckMs, () => void this.checkCredentials());
    every(TIMINGS.connectionEntryTtlMs / 3, () => {
      const held = [...this.sessions].map((s) => ({ principal: s.principal.id, sessionId: s.id }));
      void this.deps.connections.refresh(held);
    });
  }

  /** Stops the periodic work (the sessions themselves are closed by the drain). */
  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.length = 0;
  }

  /** Closes the WebSocket server once the sessions are gone. */
  close(): Promise<void> {
    return new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  /** Handles an HTTP upgrade: admitted, it becomes a session; refused, it gets its HTTP answer. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { config, admission, logger } = this.deps;
    socket.on('error', () => socket.destroy());
    const header = req.headers.traceparent;
    // The connection's span: the upgrade's checks (origin, credentials, connection slot), continuing
    // a `traceparent` header. Requests on the connection make traces of their own.
    const checked = inSpan(
      'openclaw connect',
      {
        kind: SpanKind.SERVER,
        parent: contextOf(typeof header === 'string' ? header : undefined),
        attributes: { 'openclaw.replica': config.replicaId },
      },
      async (span) => {
        const admitted = await admission.check(req);
        if (admitted instanceof GatewayError) {
          span.setAttribute('openclaw.outcome', admitted.code);
          span.setStatus({ code: SpanStatusCode.ERROR, message: admitted.code });
        } else {
          await this.deps.taskEvents.prepare(admitted.principal);
          span.setAttribute('openclaw.outcome', 'accepted');
          span.setAttribute('openclaw.session', admitted.sessionId);
        }
        return admitted;
      },
    );
    // From its cap check (already made) until its session exists or it fails, this upgrade holds a
    // place under OPENCLAW_MAX_CONNECTIONS, so concurrent upgrades cannot overshoot the cap.
    this.admitting += 1;
    let holding = true;
    const release = (): void => {
      if (holding) this.admitting -= 1;
      holding = false;
    };
    socket.once('close', release);
    const settled = checked.catch((error: unknown) => {
      logger.error({ err: error }, 'unexpected error while checking an upgrade');
      return new GatewayError('INTERNAL', 'internal error');
    });
    void settled.then((admitted) => {
      if (admitted instanceof GatewayError) {
        release();
        if (!socket.destroyed) admission.refuse(socket, admitted);
        return;
      }
      const slot = (): void => this.deps.connections.release(admitted.principal.id, admitted.sessionId);
      if (socket.destroyed) {
        release();
        slot();
        return;
      }
      const address = clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], config.trustedProxies);
      // ws refuses a bad handshake (400) by destroying the socket without calling back: the
      // principal's connection slot is given back then.
      socket.once('close', slot);
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        socket.off('close', slot);
        release();
        this.accept(ws, admitted.principal, address, admitted.sessionId);
      });
    });
  }

  private accept(ws: WebSocket, principal: Principal, address: string, sessionId: string): void {
    const { config, audit, counters, logger } = this.deps;
    const session = new Session(ws, principal, callLimits(config, principal), {
      id: sessionId,
      maxBufferedBytes: config.maxBufferedBytes,
      rateLimitPerSecond: config.rateLimitPerSecond,
      rateLimitBurst: config.rateLimitBurst,
      onClose: (code) => counters.countClose(code),
    });
    this.sessions.add(session);
    this.deps.taskEvents.attach(session);
    audit.record(principal.tenant, {
      type: 'connection.opened',
      principal: principal.id,
      outcome: 'ok',
      details: { session: session.id, address },
    });
    counters.connectionsCurrent += 1;
    counters.connectionsTotal += 1;
    ws.on('message', (data, isBinary) => {
      session.missedPongs = 0;
      handleFrame(this.deps.context, session, data as Buffer, isBinary);
    });
    ws.on('pong', () => {
      session.missedPongs = 0;
    });
    ws.on('error', (error) => {
      // ws closes the socket itself (1009 for an oversize frame); only record it.
      const code = protocolCloseCode(error);
      if (code !== undefined) session.closedByProtocol(code);
      logger.debug({ err: error.message, session: session.id }, 'websocket error');
    });
    ws.on('close', (code) => {
      // The code the gateway sent if it closed first: ws reports 1006 when the peer's close frame
      // never comes back (always, after ws closed for an oversize frame).
      const sent = session.closeCode;
      audit.record(principal.tenant, {
        type: 'connection.closed',
        principal: principal.id,
        outcome: 'ok',
        details: { session: session.id, code: sent ?? code, closedBy: sent === undefined ? 'peer' : 'gateway' },
      });
      this.sessions.delete(session);
      this.deps.taskEvents.detach(session);
      this.deps.snapshotFeed.unwatch(session);
      this.deps.context.stateWatches.detach(session);
      this.deps.connections.release(principal.id, session.id);
      counters.connectionsCurrent -= 1;
      void this.deps.agents.detach(session);
    });
  }

  /**
   * Closes (1008) the connections whose API key was revoked, on any replica, or whose credential
   * expired. Reads the revoked set in Redis every second, so a lost message cannot leave a revoked
   * connection open.
   */
  async checkCredentials(): Promise<void> {
    const now = Date.now();
    const byKey = new Map<string, Session[]>();
    for (const session of this.sessions) {
      const p = session.principal;
      if (p.expiresAt !== undefined && p.expiresAt <= now) {
        session.close(CloseCode.POLICY, 'credentials expired');
        continue;
      }
      if (p.apiKeyId !== undefined) byKey.set(p.apiKeyId, [...(byKey.get(p.apiKeyId) ?? []), session]);
    }
    const apiKeys = this.deps.apiKeys;
    if (!apiKeys || byKey.size === 0 || !this.deps.redisReady()) return;
    const revoked = await apiKeys.revokedAmong([...byKey.keys()]).catch(() => new Set<string>());
    for (const id of revoked) {
      for (const session of byKey.get(id) ?? []) session.close(CloseCode.POLICY, 'credentials revoked');
    }
  }

  /** Pings every connection; one that missed two pongs in a row is cut. */
  private heartbeat(): void {
    for (const session of this.sessions) {
      if (session.missedPongs >= 2) {
        this.deps.counters.countClose(1006);
        session.terminate();
        continue;
      }
      session.missedPongs += 1;
      try {
        session.socket.ping();
      } catch {
        session.terminate();
      }
    }
  }
}

/** The cluster-wide call limits of a principal: its roles' overrides, else the defaults. */
export function callLimits(config: GatewayConfig, principal: Principal): CallLimits {
  const overrides = principal.roles.map((role) => config.roleRates[role]).filter((r) => r !== undefined);
  const own =
    overrides.length > 0
      ? { rate: Math.max(...overrides.map((r) => r.rate)), burst: Math.max(...overrides.map((r) => r.burst)) }
      : { rate: config.principalRate, burst: config.principalBurst };
  const tenantRate = config.tenantRate;
  return {
    principal: { id: principal.id, rate: own.rate, burst: Math.max(own.burst, own.rate > 0 ? 1 : 0) },
    tenant: { id: principal.tenant, rate: tenantRate, burst: Math.max(config.tenantBurst, tenantRate > 0 ? 1 : 0) },
  };
}
