import { GatewayError } from '@openclaw/protocol';
import { errors, jwtVerify, SignJWT } from 'jose';
import { grantOf } from './policy';

const ISSUER = 'openclaw-delegation';

/** What a delegation token says. */
export interface Delegation {
  /** The principal the agent acts for: the start of the chain. */
  onBehalfOf: string;
  tenant: string;
  /** The agent that may use it. */
  agent: string;
  /** The principals whose connections may use it (registered as `agent`); no other may. */
  audience: string[];
  /** The most it grants: a subset of every issuer's rights along the chain. */
  permissions: string[];
  /** Principals that minted it, in order (the original principal first). */
  chain: string[];
  depth: number;
  maxDepth: number;
  /** Epoch ms. */
  expiresAt: number;
}

/** What minting needs. `holds` answers whether the minting principal holds a permission itself. */
export interface MintRequest {
  principal: string;
  tenant: string;
  holds: (permission: string) => boolean;
  agent: string;
  /**
   * The principals the agent connects as (see {@link Delegation.audience}): asked for once the rights
   * asked for have been checked; at least one.
   */
  audience: () => Promise<readonly string[]>;
  permissions: readonly string[];
  ttlSeconds?: number;
  /** When the minting principal's own credential expires (epoch ms): the token never outlives it. */
  issuerExpiresAt?: number;
  maxDepth?: number;
  /** A token the minting connection's agent was given, to pass a narrower one on. */
  parent?: { delegation: Delegation; actingAgent: readonly string[] };
}

/**
 * Delegation tokens: short-lived HS256 JWTs, signed by the gateway, with which an agent acts for a
 * principal with a subset of that principal's permissions. A token can only narrow: every permission
 * it grants must be held by the principal minting it and, when passed on, by the parent token too;
 * and a chain cannot grow deeper than its first token allows.
 */
export class DelegationIssuer {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
  }

  /**
   * Mints a token.
   * @throws {GatewayError} `FORBIDDEN` when it asks for more than its issuer has, or goes too deep.
   */
  async mint(request: MintRequest): Promise<{ token: string; delegation: Delegation }> {
    const parent = request.parent?.delegation;
    if (parent && !request.parent!.actingAgent.includes(parent.agent)) {
      throw new GatewayError(
        'FORBIDDEN',
        `the parent delegation was issued for agent '${parent.agent}', not this connection`,
      );
    }
    if (parent && parent.tenant !== request.tenant)
      throw new GatewayError('FORBIDDEN', 'the parent delegation is of another tenant');
    if (parent && !parent.audience.includes(request.principal)) {
      throw new GatewayError('FORBIDDEN', 'the parent delegation was issued to another principal');
    }
    for (const permission of request.permissions) {
      if (!request.holds(permission)) {
        throw new GatewayError('FORBIDDEN', `the delegation asks for more than its issuer has: '${permission}'`, {
          details: { permission },
        });
      }
      if (parent && !grantOf(parent.permissions, permission)) {
        throw new GatewayError('FORBIDDEN', `the delegation asks for more than its parent grants: '${permission}'`, {
          details: { permission },
        });
      }
    }
    const depth = parent ? parent.depth + 1 : 1;
    const maxDepth = parent ? Math.min(request.maxDepth ?? parent.maxDepth, parent.maxDepth) : (request.maxDepth ?? 1);
    if (depth > maxDepth) {
      throw new GatewayError('FORBIDDEN', `the delegation chain would be deeper than allowed (at most ${maxDepth})`, {
        details: { depth, maxDepth },
      });
    }
    const now = Date.now();
    const ttlMs = Math.min(
      (request.ttlSeconds ?? 300) * 1000,
      3_600_000,
      parent ? parent.expiresAt - now : Number.POSITIVE_INFINITY,
      request.issuerExpiresAt !== undefined ? request.issuerExpiresAt - now : Number.POSITIVE_INFINITY,
    );
    if (ttlMs <= 0) throw new GatewayError('FORBIDDEN', 'the parent delegation has expired');
    const audience = await request.audience();
    if (audience.length === 0) {
      throw new GatewayError('BAD_REQUEST', 'a delegation must be bound to at least one principal');
    }
    const delegation: Delegation = {
      onBehalfOf: parent ? parent.onBehalfOf : request.principal,
      tenant: request.tenant,
      agent: request.agent,
      audience: [...audience],
      permissions: [...request.permissions],
      chain: parent ? [...parent.chain, request.principal] : [request.principal],
      depth,
      maxDepth,
      expiresAt: now + ttlMs,
    };
    const token = await new SignJWT({
      tenant: delegation.tenant,
      agent: delegation.agent,
      permissions: delegation.permissions,
      chain: delegation.chain,
      depth,
      maxDepth,
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'openclaw-delegation+jwt' })
      .setIssuer(ISSUER)
      .setSubject(delegation.onBehalfOf)
      .setAudience(delegation.audience)
      .setIssuedAt()
      .setExpirationTime(Math.floor(delegation.expiresAt / 1000))
      .sign(this.key);
    return { token, delegation };
  }

  /**
   * Reads a token.
   * @throws {GatewayError} `FORBIDDEN` when it is not valid (tampered, expired, not ours).
   */
  async verify(token: string): Promise<Delegation> {
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, algorithms: ['HS256'] });
      const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
      // Tokens bound to no principal (minted before delegations were bound) could be replayed by any
      // connection registered under the agent's name: they are refused.
      const audience = typeof payload.aud === 'string' ? [payload.aud] : list(payload.aud);
      if (audience.length === 0) {
        throw new GatewayError('FORBIDDEN', 'the delegation token is bound to no principal: mint it again');
      }
      return {
        audience,
        onBehalfOf: String(payload.sub),
        tenant: String(payload.tenant),
        agent: String(payload.agent),
        permissions: list(payload.permissions),
        chain: list(payload.chain),
        depth: Number(payload.depth),
        maxDepth: Number(payload.maxDepth),
        expiresAt: (payload.exp ?? 0) * 1000,
      };
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      const reason =
        error instanceof errors.JWTExpired ? 'the delegation has expired' : 'the delegation token is not valid';
      throw new GatewayError('FORBIDDEN', reason);
    }
  }
}
