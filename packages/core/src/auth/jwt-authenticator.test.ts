import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GatewayError } from '@openclaw/protocol';
import { type JWTPayload, SignJWT } from 'jose';
import { JwtAuthenticator, type JwtOptions } from './jwt-authenticator';

const SECRET = 'a-shared-jwt-secret-of-32-characters-or-more';
const ISSUER = 'https://issuer.example';

const OPTIONS: JwtOptions = {
  secret: SECRET,
  issuer: ISSUER,
  jwksUrl: '',
  audience: 'openclaw',
  algorithms: ['RS256'],
  clockSkewSeconds: 30,
  requireExp: true,
  maxLifetimeSeconds: 86_400,
  tenantClaim: 'tenant',
  defaultTenant: 'default',
  rolesClaim: 'roles',
  scopeClaim: 'scope',
  groupsClaim: 'groups',
  introspection: { url: '', clientId: '', clientSecret: '' },
};

const now = () => Math.floor(Date.now() / 1000);

/** An HS256 token of our issuer and audience; `exp`/`iat` only when given. */
function hs256(claims: JWTPayload, times: { iat?: number; exp?: number } = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setAudience('openclaw');
  if (times.iat !== undefined) jwt.setIssuedAt(times.iat);
  if (times.exp !== undefined) jwt.setExpirationTime(times.exp);
  return jwt.sign(new TextEncoder().encode(SECRET));
}

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` }, url: '/' });

async function refusal(auth: JwtAuthenticator, token: string): Promise<unknown> {
  return auth.authenticate(bearer(token)).then(
    (principal) => principal,
    (error: unknown) => (error instanceof GatewayError ? { code: error.code, message: error.message } : error),
  );
}

describe('JwtAuthenticator: lifetime', () => {
  it('refuses a token without exp by default, and accepts it with requireExp off', async () => {
    const token = await hs256({ sub: 'svc' });
    expect(await refusal(new JwtAuthenticator(OPTIONS, undefined), token)).toEqual({
      code: 'UNAUTHENTICATED',
      message: 'the token has no exp claim',
    });
    const lenient = new JwtAuthenticator({ ...OPTIONS, requireExp: false }, undefined);
    const principal = await lenient.authenticate(bearer(token));
    expect(principal).toMatchObject({ id: 'jwt:svc', tenant: 'default' });
    expect(principal.expiresAt).toBeUndefined();
  });

  it('measures the lifetime from iat, from now without it, and never from a future iat', async () => {
    const auth = new JwtAuthenticator({ ...OPTIONS, maxLifetimeSeconds: 3600 }, undefined);
    const tooLong = {
      code: 'UNAUTHENTICATED',
      message: 'the token lives longer than 3600 s, the longest accepted here',
    };
    const t = now();
    expect(await refusal(auth, await hs256({ sub: 'a' }, { iat: t - 3000, exp: t + 1000 }))).toEqual(tooLong);
    expect(await refusal(auth, await hs256({ sub: 'a' }, { exp: t + 7200 }))).toEqual(tooLong);
    expect(await refusal(auth, await hs256({ sub: 'a' }, { iat: t + 86_400, exp: t + 86_400 + 60 }))).toEqual(tooLong);
    // An issuer's clock a little ahead (within the skew) still counts from its iat.
    expect(
      await auth.authenticate(bearer(await hs256({ sub: 'a' }, { iat: t + 20, exp: t + 20 + 3600 }))),
    ).toMatchObject({
      id: 'jwt:a',
      expiresAt: (t + 20 + 3600) * 1000,
    });
    expect(await auth.authenticate(bearer(await hs256({ sub: 'a' }, { iat: t, exp: t + 3600 })))).toMatchObject({
      id: 'jwt:a',
    });
  });

  it('has no maximum lifetime when it is 0', async () => {
    const auth = new JwtAuthenticator({ ...OPTIONS, maxLifetimeSeconds: 0 }, undefined);
    const t = now();
    expect(
      await auth.authenticate(bearer(await hs256({ sub: 'a' }, { iat: t, exp: t + 10 * 365 * 86_400 }))),
    ).toMatchObject({ id: 'jwt:a' });
  });
});

describe('JwtAuthenticator: tenant', () => {
  const exp = () => ({ exp: now() + 600 });
  const invalid = {
    code: 'UNAUTHENTICATED',
    message: "the tenant claim 'tenant' is not a valid tenant name (^[a-z0-9][a-z0-9._-]{0,62}$)",
  };

  it.each([['Default'], [''], ['a/b'], ['x'.repeat(64)], [7], [['acme']], [null], [{ name: 'acme' }]])(
    'refuses the tenant claim %j instead of falling back to the default tenant',
    async (tenant) => {
      const auth = new JwtAuthenticator(OPTIONS, undefined);
      expect(await refusal(auth, await hs256({ sub: 'm', tenant, roles: ['admin'] }, exp()))).toEqual(invalid);
    },
  );

  it('names the configured claim when refusing it', async () => {
    const auth = new JwtAuthenticator({ ...OPTIONS, tenantClaim: 'org' }, undefined);
    expect(await refusal(auth, await hs256({ sub: 'm', org: 'ACME' }, exp()))).toEqual({
      code: 'UNAUTHENTICATED',
      message: "the tenant claim 'org' is not a valid tenant name (^[a-z0-9][a-z0-9._-]{0,62}$)",
    });
  });

  it('gives a token without the claim the configured default tenant, or refuses it when there is none', async () => {
    const token = await hs256({ sub: 'm' }, exp());
    expect(await new JwtAuthenticator(OPTIONS, undefined).authenticate(bearer(token))).toMatchObject({
      tenant: 'default',
    });
    expect(
      await new JwtAuthenticator({ ...OPTIONS, defaultTenant: 'guests' }, undefined).authenticate(bearer(token)),
    ).toMatchObject({ tenant: 'guests' });
    expect(await refusal(new JwtAuthenticator({ ...OPTIONS, defaultTenant: '' }, undefined), token)).toEqual({
      code: 'UNAUTHENTICATED',
      message: "the token has no tenant claim 'tenant'",
    });
    expect(
      await new JwtAuthenticator({ ...OPTIONS, defaultTenant: '' }, undefined).authenticate(
        bearer(await hs256({ sub: 'm', tenant: 'acme' }, exp())),
      ),
    ).toMatchObject({ tenant: 'acme' });
  });
});

describe('JwtAuthenticator: introspected access tokens', () => {
  let server: Server;
  let answer: Record<string, unknown>;
  let url: string;

  beforeAll(async () => {
    // A real RFC 7662 endpoint on loopback, whose answer each test sets.
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const introspecting = (options: Partial<JwtOptions> = {}) =>
    new JwtAuthenticator(
      { ...OPTIONS, ...options, introspection: { url, clientId: 'gw', clientSecret: 's' } },
      undefined,
    );
  const active = (claims: Record<string, unknown>) => ({ active: true, iss: ISSUER, aud: 'openclaw', ...claims });

  it('refuses an active token without exp, unless exp is not required', async () => {
    answer = active({ client_id: 'svc' });
    expect(await refusal(introspecting(), 'opaque-token-1')).toEqual({
      code: 'UNAUTHENTICATED',
      message: 'the token has no exp claim',
    });
    expect(await introspecting({ requireExp: false }).authenticate(bearer('opaque-token-1'))).toMatchObject({
      id: 'oauth:svc',
    });
  });

  it('refuses a token that lives too long, and a tenant that is not a tenant name', async () => {
    const t = now();
    answer = active({ client_id: 'svc', iat: t, exp: t + 2 * 86_400 });
    expect(await refusal(introspecting(), 'opaque-token-2')).toEqual({
      code: 'UNAUTHENTICATED',
      message: 'the token lives longer than 86400 s, the longest accepted here',
    });
    answer = active({ client_id: 'svc', iat: t, exp: t + 600, tenant: 'Operators' });
    expect(await refusal(introspecting(), 'opaque-token-3')).toEqual({
      code: 'UNAUTHENTICATED',
      message: "the tenant claim 'tenant' is not a valid tenant name (^[a-z0-9][a-z0-9._-]{0,62}$)",
    });
    answer = active({ client_id: 'svc', iat: t, exp: t + 600, tenant: 'acme' });
    expect(await introspecting().authenticate(bearer('opaque-token-4'))).toMatchObject({
      id: 'oauth:svc',
      tenant: 'acme',
    });
  });
});
