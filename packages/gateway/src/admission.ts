import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  ApiKeyAuthenticator,
  type ApiKeyStore,
  type AuditLog,
  type Authenticator,
  type AuthLockout,
  type ConnectionLimiter,
  clientAddress,
  type GatewayConfig,
  GatewayError,
  JwtAuthenticator,
  type Logger,
  NoAuthenticator,
  type Principal,
  UNAUTHENTICATED_TENANT,
} from '@openclaw/core';
import { httpStatusOf } from '@openclaw/protocol';
import { isOriginAllowed } from './origin';
import type { ReplicaCounters } from './replica-counters';

const WS_PATHS = new Set(['/', '/ws']);
const STATUS_TEXT: Record<number, string> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/** What admission needs of its replica. */
export interface AdmissionDeps {
  config: GatewayConfig;
  audit: AuditLog;
  authenticator: Authenticator;
  lockout: AuthLockout;
  connections: ConnectionLimiter;
  metrics: ReplicaCounters;
  logger: Logger;
  /** Whether the replica drains, and how many connections it holds or is admitting now. */
  state(): { draining: boolean; connections: number };
}

/**
 * Who may connect, and who may call the HTTP API: a WebSocket upgrade passes the replica's drain and
 * connection cap, its path, the audit's health, its `Origin`, its credentials (with the lockout of
 * addresses that fail too often) and its principal's connection slot, or is refused with an HTTP
 * status and a JSON error. Every refusal of an unauthenticated request is audited.
 */
export class ConnectionAdmission {
  constructor(private readonly deps: AdmissionDeps) {}

  /**
   * The principal of an upgrade request and the connection slot it took (see
   * OPENCLAW_PRINCIPAL_MAX_CONNECTIONS), or why it is refused. Never rejects.
   */
  async check(req: IncomingMessage): Promise<{ principal: Principal; sessionId: string } | GatewayError> {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://gateway.invalid').pathname;
    } catch {
      return new GatewayError('BAD_REQUEST', 'the request URL is not valid');
    }
    if (this.deps.state().draining)
      return new GatewayError('UNAVAILABLE', 'this replica is draining; connect to another');
    const cap = this.deps.config.maxConnections;
    if (this.deps.state().connections >= cap) {
      return new GatewayError(
        'UNAVAILABLE',
        `this replica holds its maximum of ${cap} connections; connect to another`,
        {
          // Spread: clients told the same moment should not all come back the same moment.
          retryAfterMs: 1000 + Math.floor(Math.random() * 2000),
          details: { scope: 'replica', limit: cap },
        },
      );
    }
    if (!WS_PATHS.has(path)) return new GatewayError('NOT_FOUND', 'WebSocket endpoints are / and /ws');
    if (this.deps.config.auditRequired && !this.deps.audit.healthy()) {
      return new GatewayError('UNAVAILABLE', 'the audit trail cannot be written now; refusing to serve unaudited');
    }
    if (!isOriginAllowed(req.headers.origin, this.deps.config, req.headers.host)) {
      this.auditOriginRefused(req, path);
      return new GatewayError('FORBIDDEN', 'this Origin is not allowed to connect');
    }
    let principal: Principal;
    try {
      principal = await this.authenticate(req);
    } catch (error) {
      return error instanceof GatewayError ? error : new GatewayError('UNAUTHENTICATED', 'authentication failed');
    }
    const sessionId = randomUUID();
    const limit = this.maxConnections(principal);
    if (!(await this.deps.connections.acquire(principal.id, sessionId, limit))) {
      return new GatewayError('RATE_LIMITED', `this principal already has its maximum of ${limit} connections`, {
        retryAfterMs: 1000,
        details: { scope: 'connections', limit },
      });
    }
    return { principal, sessionId };
  }

  /** The most live connections a principal may hold: its roles' overrides, else the default. */
  private maxConnections(principal: Principal): number {
    const overrides = principal.roles
      .map((role) => this.deps.config.roleRates[role]?.connections)
      .filter((n): n is number => n !== undefined);
    return overrides.length > 0 ? Math.max(...overrides) : this.deps.config.principalMaxConnections;
  }

  refuse(socket: Duplex, error: GatewayError): void {
    this.deps.metrics.connectionsRejected += 1;
    const status = httpStatusOf(error.code);
    const body = JSON.stringify({ error: error.toWire() });
    const retryAfter =
      error.retryAfterMs === undefined ? '' : `Retry-After: ${Math.ceil(error.retryAfterMs / 1000)}\r\n`;
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
        `Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retryAfter}Connection: close\r\n\r\n${body}`,
    );
    // A client that reads the refusal and never closes its side must not hold the socket open.
    const linger = setTimeout(() => socket.destroy(), this.deps.config.refusedLingerMs).unref();
    socket.once('close', () => clearTimeout(linger));
  }

  /** Records a request refused for its `Origin` (before any credential is read: no tenant yet). */
  auditOriginRefused(req: IncomingMessage, path: string): void {
    this.deps.audit.record(UNAUTHENTICATED_TENANT, {
      type: 'origin.refused',
      outcome: 'FORBIDDEN',
      details: {
        address: clientAddress(
          req.socket.remoteAddress,
          req.headers['x-forwarded-for'],
          this.deps.config.trustedProxies,
        ),
        origin: String(req.headers.origin ?? '').slice(0, 256),
        path,
      },
    });
  }

  /**
   * Authenticates an upgrade or HTTP request, with lockout: an address with too many recent failures
   * is refused (`RATE_LIMITED`, HTTP 429) whatever it sends, on every replica.
   */
  async authenticate(req: IncomingMessage): Promise<Principal> {
    if (this.deps.config.auth === 'none')
      return this.deps.authenticator.authenticate({ headers: req.headers, url: req.url ?? '/' });
    const address = clientAddress(
      req.socket.remoteAddress,
      req.headers['x-forwarded-for'],
      this.deps.config.trustedProxies,
    );
    const locked = await this.deps.lockout.lockedFor(address);
    if (locked > 0) {
      this.deps.audit.record(UNAUTHENTICATED_TENANT, {
        type: 'auth.locked',
        outcome: 'RATE_LIMITED',
        details: { address, path: (req.url ?? '/').split('?')[0] ?? '/' },
      });
      throw new GatewayError('RATE_LIMITED', 'too many failed authentications from this address; try again later', {
        retryAfterMs: locked,
      });
    }
    try {
      return await this.deps.authenticator.authenticate({ headers: req.headers, url: req.url ?? '/' });
    } catch (error) {
      if (error instanceof GatewayError && error.code === 'UNAUTHENTICATED') {
        this.deps.audit.record(UNAUTHENTICATED_TENANT, {
          type: 'auth.failed',
          outcome: error.code,
          details: { address, reason: error.message, path: (req.url ?? '/').split('?')[0] ?? '/' },
        });
        if (await this.deps.lockout.recordFailure(address)) {
          this.deps.logger.warn({ address }, 'locked out an address after repeated failed authentications');
        }
      }
      throw error;
    }
  }
}

/** The authenticator of an auth mode. In `jwt` mode, credentials that are not JWTs are API keys. */
export function createAuthenticator(config: GatewayConfig, apiKeys: ApiKeyStore | undefined): Authenticator {
  const keys = config.apiKeys.length > 0 || apiKeys ? new ApiKeyAuthenticator(config.apiKeys, apiKeys) : undefined;
  switch (config.auth) {
    case 'none':
      return new NoAuthenticator();
    case 'apikey':
      return keys ?? new ApiKeyAuthenticator([], undefined);
    case 'jwt':
      return new JwtAuthenticator(
        {
          secret: config.jwtSecret,
          issuer: config.jwtIssuer,
          jwksUrl: config.jwtJwksUrl,
          audience: config.jwtAudience,
          algorithms: config.jwtAlgorithms,
          clockSkewSeconds: config.jwtClockSkewSeconds,
          requireExp: config.jwtRequireExp,
          maxLifetimeSeconds: config.jwtMaxLifetimeSeconds,
          tenantClaim: config.jwtTenantClaim,
          defaultTenant: config.jwtDefaultTenant,
          rolesClaim: config.jwtRolesClaim,
          scopeClaim: config.jwtScopeClaim,
          groupsClaim: config.jwtGroupsClaim,
          introspection: {
            url: config.oauthIntrospectionUrl,
            clientId: config.oauthClientId,
            clientSecret: config.oauthClientSecret,
          },
        },
        keys,
      );
  }
}
