import { createHash } from 'node:crypto';
import { GatewayError } from '@openclaw/protocol';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import { TIMINGS } from '../config/timings';
import type { ApiKeyAuthenticator } from './api-key-authenticator';
import type { Principal } from './principal';
import { type Authenticator, extractCredential, type RequestCredentials } from './static-key-authenticator';

/** How JWT bearer tokens are checked and mapped to a principal. */
export interface JwtOptions {
  /** Shared secret for HS256/384/512 tokens; empty: HMAC tokens are refused. */
  secret: string;
  /** Expected `iss`. With no `jwksUrl`, its OIDC discovery document gives the JWKS. */
  issuer: string;
  /** JWKS of the issuer's public keys; empty: from OIDC discovery, or no public-key tokens. */
  jwksUrl: string;
  /** Expected `aud`. */
  audience: string;
  /** Allowed public-key algorithms (never `none`, never an HMAC one). */
  algorithms: readonly string[];
  clockSkewSeconds: number;
  /** Refuse tokens without `exp` (they would be accepted forever). */
  requireExp: boolean;
  /** Longest lifetime accepted, `exp` - `iat` (or now), in seconds; 0: no limit. */
  maxLifetimeSeconds: number;
  tenantClaim: string;
  /** Tenant of tokens without the tenant claim; empty: they are refused. */
  defaultTenant: string;
  rolesClaim: string;
  scopeClaim: string;
  groupsClaim: string;
  /** RFC 7662 introspection of opaque OAuth 2.0 access tokens; off when `clientId` is empty. */
  introspection: { url: string; clientId: string; clientSecret: string };
}

/** Introspection answers kept, at most, and for at most this long (revocation takes effect by then). */
const INTROSPECTION_CACHE_SIZE = 10_000;

const HMAC = ['HS256', 'HS384', 'HS512'];
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const TENANT = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/**
 * JWT bearer tokens (and, for credentials that are not JWTs, API keys). HMAC tokens are checked only
 * against the shared secret and only with HS algorithms; all others only against the issuer's JWKS
 * and only with the allowed public-key algorithms, so an `alg: none` token, or an HMAC token signed
 * with a public key, cannot pass. `exp`, `nbf`, `iss` and `aud` are checked with the configured clock
 * skew; a token without `exp`, or living longer than allowed, is refused (unless configured
 * otherwise), and so is one whose tenant claim is not a tenant name. Keys come from one JWKS per issuer
 * (so keys are effectively cached by issuer and kid), with a refetch on an unknown kid at most every 30 s.
 */
export class JwtAuthenticator implements Authenticator {
  private readonly secret: Uint8Array | undefined;
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private discovery: Promise<Discovery> | undefined;
  private readonly introspected = new Map<string, { principal: Principal; until: number }>();

  constructor(
    private readonly options: JwtOptions,
    private readonly apiKeys: ApiKeyAuthenticator | undefined,
  ) {
    this.secret = options.secret === '' ? undefined : new TextEncoder().encode(options.secret);
    if (options.jwksUrl !== '') this.jwks = remoteSet(options.jwksUrl);
  }

  async authenticate(request: RequestCredentials): Promise<Principal> {
    const credential = extractCredential(request);
    if (credential === undefined || credential === '') {
      throw new GatewayError('UNAUTHENTICATED', 'credentials required: send a bearer token or an API key');
    }
    if (!JWT_SHAPE.test(credential)) {
      if (this.options.introspection.clientId === '') {
        if (this.apiKeys) return this.apiKeys.authenticate(request);
        throw new GatewayError('UNAUTHENTICATED', 'the bearer token is not a JWT');
      }
      // API keys first (they are recognised locally); anything else is an opaque OAuth access token.
      if (this.apiKeys) {
        try {
          return await this.apiKeys.authenticate(request);
        } catch (error) {
          if (!(error instanceof GatewayError) || error.code !== 'UNAUTHENTICATED' || credential.startsWith('ock_'))
            throw error;
        }
      }
      return this.introspect(credential);
    }
    const payload = await this.verify(credential);
    // After the signature: a forged token learns nothing from these answers.
    this.checkLifetime(payload.exp, payload.iat);
    return this.principalOf(payload);
  }

  private async verify(token: string): Promise<JWTPayload> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new GatewayError('UNAUTHENTICATED', 'the token is not a valid JWT');
    }
    // A foreign issuer is refused before any key lookup: clearer, and a stranger's unknown kids cannot
    // make the gateway refetch its issuer's keys. (The verified check in jwtVerify is the one that counts.)
    let claimedIssuer: unknown;
    try {
      claimedIssuer = decodeJwt(token).iss;
    } catch {
      throw new GatewayError('UNAUTHENTICATED', 'the token is not a valid JWT');
    }
    if (this.options.issuer !== '' && claimedIssuer !== this.options.issuer) {
      throw new GatewayError('UNAUTHENTICATED', 'the token’s issuer is not accepted');
    }
    const common = {
      issuer: this.options.issuer === '' ? undefined : this.options.issuer,
      audience: this.options.audience,
      clockTolerance: this.options.clockSkewSeconds,
    };
    try {
      if (alg !== undefined && HMAC.includes(alg)) {
        if (!this.secret) throw new GatewayError('UNAUTHENTICATED', 'HMAC-signed tokens are not accepted here');
        return (await jwtVerify(token, this.secret, { ...common, algorithms: HMAC })).payload;
      }
      const keys = await this.keySet();
      return (await jwtVerify(token, keys, { ...common, algorithms: [...this.options.algorithms] })).payload;
    } catch (error) {
      throw describe(error);
    }
  }

  private async keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.jwks) return this.jwks;
    if (this.options.issuer === '')
      throw new GatewayError('UNAUTHENTICATED', 'public-key tokens are not accepted here');
    const document = await this.discover();
    this.jwks ??= remoteSet(document.jwksUri);
    return this.jwks;
  }

  private async discover(): Promise<Discovery> {
    this.discovery ??= discover(this.options.issuer);
    try {
      return await this.discovery;
    } catch (error) {
      this.discovery = undefined; // Try again on the next token.
      throw error;
    }
  }

  /**
   * An opaque access token, through the issuer's RFC 7662 introspection endpoint: it must be active,
   * from our issuer, for our audience, and unexpired. Answers are cached (bounded) for at most a minute.
   */
  private async introspect(token: string): Promise<Principal> {
    const cacheKey = createHash('sha256').update(token).digest('hex');
    const cached = this.introspected.get(cacheKey);
    if (cached && cached.until > Date.now()) return cached.principal;
    this.introspected.delete(cacheKey);
    const { clientId, clientSecret } = this.options.introspection;
    const url =
      this.options.introspection.url !== '' ? this.options.introspection.url : (await this.discover()).introspectionUri;
    if (!url) throw new GatewayError('UNAUTHENTICATED', 'opaque access tokens are not accepted here');
    let answer: JWTPayload & { active?: unknown; client_id?: unknown };
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`,
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
        signal: AbortSignal.timeout(5000),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      answer = (await response.json()) as typeof answer;
    } catch (error) {
      throw new GatewayError('UNAVAILABLE', 'cannot check the access token with its issuer now; retry shortly', {
        cause: error,
      });
    }
    const unauth = (message: string) => new GatewayError('UNAUTHENTICATED', message);
    if (answer.active !== true) throw unauth('the access token is not active (unknown, expired or revoked)');
    if (this.options.issuer !== '' && answer.iss !== undefined && answer.iss !== this.options.issuer) {
      throw unauth('the token’s issuer is not accepted');
    }
    const audiences = Array.isArray(answer.aud) ? answer.aud : answer.aud === undefined ? [] : [answer.aud];
    if (!audiences.includes(this.options.audience)) throw unauth('the token’s audience is not accepted');
    const now = Date.now();
    if (typeof answer.exp === 'number' && answer.exp * 1000 <= now - this.options.clockSkewSeconds * 1000) {
      throw unauth('the token has expired');
    }
    this.checkLifetime(answer.exp, answer.iat);
    const subject = typeof answer.sub === 'string' && answer.sub !== '' ? answer.sub : answer.client_id;
    if (typeof subject !== 'string' || subject === '') throw unauth('the token has no subject or client');
    const principal = { ...this.principalOf({ ...answer, sub: subject }), id: `oauth:${subject}` };
    const expiry = typeof answer.exp === 'number' ? answer.exp * 1000 : now + TIMINGS.introspectionCacheMs;
    const until = Math.min(now + TIMINGS.introspectionCacheMs, expiry);
    if (this.introspected.size >= INTROSPECTION_CACHE_SIZE) {
      const oldest = this.introspected.keys().next().value;
      if (oldest !== undefined) this.introspected.delete(oldest);
    }
    this.introspected.set(cacheKey, { principal, until });
    return principal;
  }

  /**
   * Refuses a token without `exp` (when required) or one that lives longer than allowed. The lifetime
   * counts from `iat`, but never from later than now (plus the skew): a future `iat` cannot make a
   * long-lived token look short.
   */
  private checkLifetime(exp: unknown, iat: unknown): void {
    if (typeof exp !== 'number') {
      if (this.options.requireExp) throw new GatewayError('UNAUTHENTICATED', 'the token has no exp claim');
      return;
    }
    const max = this.options.maxLifetimeSeconds;
    if (max === 0) return;
    const now = Date.now() / 1000;
    const issued = Math.min(typeof iat === 'number' ? iat : now, now + this.options.clockSkewSeconds);
    if (exp - issued > max) {
      throw new GatewayError('UNAUTHENTICATED', `the token lives longer than ${max} s, the longest accepted here`);
    }
  }

  /**
   * The principal's tenant: the tenant claim, or the configured default when the claim is absent. A
   * claim that is present but not a tenant name is refused, never mapped to another tenant (the
   * default one is the operators').
   */
  private tenantOf(payload: JWTPayload): string {
    const name = this.options.tenantClaim;
    const claim = payload[name];
    if (claim === undefined) {
      if (this.options.defaultTenant === '') {
        throw new GatewayError('UNAUTHENTICATED', `the token has no tenant claim '${name}'`);
      }
      return this.options.defaultTenant;
    }
    if (typeof claim !== 'string' || !TENANT.test(claim)) {
      throw new GatewayError(
        'UNAUTHENTICATED',
        `the tenant claim '${name}' is not a valid tenant name (^[a-z0-9][a-z0-9._-]{0,62}$)`,
      );
    }
    return claim;
  }

  private principalOf(payload: JWTPayload): Principal {
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      throw new GatewayError('UNAUTHENTICATED', 'the token has no subject (sub)');
    }
    const tenant = this.tenantOf(payload);
    const roles = listClaim(payload[this.options.rolesClaim]);
    // OAuth scopes that name permissions (`agent:invoke:billing`) grant them directly; roles are
    // resolved at each check, through the policy.
    const permissions = new Set(listClaim(payload[this.options.scopeClaim]).filter((s) => s.includes(':')));
    const claims: Record<string, string> = {};
    for (const [k, v] of Object.entries(payload)) if (typeof v === 'string') claims[k] = v;
    const principal: Principal = {
      id: `jwt:${payload.sub}`,
      tenant,
      roles,
      permissions,
      groups: listClaim(payload[this.options.groupsClaim]),
      claims,
    };
    return payload.exp === undefined ? principal : { ...principal, expiresAt: payload.exp * 1000 };
  }
}

function remoteSet(url: string): ReturnType<typeof createRemoteJWKSet> {
  return createRemoteJWKSet(new URL(url), { cooldownDuration: 30_000, cacheMaxAge: 600_000, timeoutDuration: 5000 });
}

/** What the issuer's OIDC discovery document tells. */
interface Discovery {
  jwksUri: string;
  introspectionUri: string | undefined;
}

async function discover(issuer: string): Promise<Discovery> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let document: { jwks_uri?: unknown; issuer?: unknown; introspection_endpoint?: unknown };
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    document = (await response.json()) as typeof document;
  } catch (error) {
    throw new GatewayError('UNAVAILABLE', 'cannot read the token issuer’s discovery document; retry shortly', {
      cause: error,
    });
  }
  if (typeof document.jwks_uri !== 'string' || document.issuer !== issuer) {
    throw new GatewayError('UNAVAILABLE', 'the token issuer’s discovery document is not usable', { retryable: false });
  }
  return {
    jwksUri: document.jwks_uri,
    introspectionUri: typeof document.introspection_endpoint === 'string' ? document.introspection_endpoint : undefined,
  };
}

function listClaim(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** The client-facing error for a failed verification; key-fetch trouble is ours, not the client's. */
function describe(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  const unauth = (message: string) => new GatewayError('UNAUTHENTICATED', message);
  if (error instanceof errors.JWTExpired) return unauth('the token has expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return unauth('the token is not valid yet');
    if (error.claim === 'aud') return unauth('the token’s audience is not accepted');
    if (error.claim === 'iss') return unauth('the token’s issuer is not accepted');
    return unauth(`the token’s ${error.claim} claim is not accepted`);
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return unauth('the token’s algorithm is not allowed');
  if (error instanceof errors.JWKSNoMatchingKey) return unauth('the token’s key is not known to its issuer');
  if (error instanceof errors.JWSSignatureVerificationFailed) return unauth('the token’s signature is not valid');
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) {
    return new GatewayError('UNAVAILABLE', 'cannot read the token issuer’s keys now; retry shortly', { cause: error });
  }
  if (error instanceof errors.JOSEError) return unauth('the token is not valid');
  return new GatewayError('UNAVAILABLE', 'cannot check the token now; retry shortly', { cause: error });
}
