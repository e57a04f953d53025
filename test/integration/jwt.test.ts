import { createHmac } from 'node:crypto';
import { SignJWT } from 'jose';
import { auditTail } from '../helpers/cli';
import { type Cluster, startCluster } from '../helpers/cluster';
import { TokenIssuer } from '../helpers/token-issuer';
import { withTimeout } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const SECRET = 'a-shared-jwt-secret-of-32-characters-or-more';

function b64url(value: object | string): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** JWT bearer tokens against a real issuer (OIDC discovery and JWKS over HTTP) and two replicas. */
describe('JWT authentication', () => {
  let cluster: Cluster;
  let issuer: TokenIssuer;
  let other: TokenIssuer;
  const now = () => Math.floor(Date.now() / 1000);
  const open = (token: string, replica = 0) =>
    TestSocket.open(cluster.gateways[replica]!.url, { headers: { authorization: `Bearer ${token}` } });
  const refused = async (token: string, message: string) =>
    expect(open(token)).rejects.toMatchObject({ status: 401, json: { error: { code: 'UNAUTHENTICATED', message } } });

  beforeAll(async () => {
    issuer = await TokenIssuer.start('k1');
    other = await TokenIssuer.start('k1'); // same kid, another issuer and key
    cluster = await startCluster({
      replicas: 2,
      auth: 'jwt',
      env: {
        OPENCLAW_JWT_ISSUER: issuer.issuer,
        OPENCLAW_JWT_AUDIENCE: 'openclaw',
        OPENCLAW_JWT_SECRET: SECRET,
        OPENCLAW_JWT_CLOCK_SKEW_S: '5',
        // Many refused tokens come from this one address: keep lockout out of these tests.
        OPENCLAW_AUTH_MAX_FAILURES: '0',
      },
    });
  });
  afterAll(async () => {
    await cluster.stop();
    await Promise.all([issuer.stop(), other.stop()]);
  });

  it('accepts a good token from the issuer (keys found through OIDC discovery) and maps its claims', async () => {
    const token = await issuer.sign({
      sub: 'alice',
      tenant: 'acme',
      roles: ['caller'],
      scope: 'openid agent:register:helper',
    });
    for (const replica of [0, 1]) {
      const s = await open(token, replica);
      expect(await s.request({ action: 'hello', id: 1 })).toMatchObject({
        result: { principal: { id: 'jwt:alice', tenant: 'acme', roles: ['caller'] } },
      });
      // The role grants invoking; the scope grants registering as 'helper' and nothing else.
      expect(await s.request({ action: 'register', id: 2, name: 'helper' })).toMatchObject({ ok: true });
      expect(await s.request({ action: 'register', id: 3, name: 'other' })).toMatchObject({
        error: { code: 'FORBIDDEN' },
      });
      await s.close();
    }
  });

  it('refuses an unsigned token (alg: none)', async () => {
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub: 'mallory', iss: issuer.issuer, aud: 'openclaw', exp: now() + 60 })}.`;
    await refused(token, 'the token’s algorithm is not allowed');
  });

  it('refuses a token signed with the wrong key, and one from another issuer with the same kid', async () => {
    // Another key, same kid, claiming our issuer: the signature does not verify.
    await refused(await other.sign({ sub: 'mallory' }, { iss: issuer.issuer }), 'the token’s signature is not valid');
    // Another issuer's token: its issuer is not accepted, though its kid exists at ours.
    await refused(await other.sign({ sub: 'mallory' }), 'the token’s issuer is not accepted');
  });

  it('refuses an HMAC token signed with the RSA public key', async () => {
    const header = b64url({ alg: 'HS256', typ: 'JWT' });
    const payload = b64url({ sub: 'mallory', iss: issuer.issuer, aud: 'openclaw', exp: now() + 60 });
    const signature = createHmac('sha256', issuer.publicKeyPem).update(`${header}.${payload}`).digest('base64url');
    await refused(`${header}.${payload}.${signature}`, 'the token’s signature is not valid');
  });

  it('refuses expired and not-yet-valid tokens, beyond the clock skew', async () => {
    await refused(await issuer.sign({ sub: 'alice' }, { exp: now() - 60 }), 'the token has expired');
    await refused(await issuer.sign({ sub: 'alice' }, { nbf: now() + 60 }), 'the token is not valid yet');
    // Within the 5 s skew: accepted.
    const s = await open(await issuer.sign({ sub: 'alice' }, { nbf: now() + 2 }));
    await s.close();
  });

  it('refuses a token for another audience', async () => {
    await refused(await issuer.sign({ sub: 'alice' }, { aud: 'someone-else' }), 'the token’s audience is not accepted');
  });

  it('refuses a token without exp, and one that lives longer than 24 h (the defaults)', async () => {
    const hs256 = (exp: number | undefined) => {
      const jwt = new SignJWT({ sub: 'svc' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer(issuer.issuer)
        .setAudience('openclaw');
      if (exp !== undefined) jwt.setExpirationTime(exp);
      return jwt.sign(new TextEncoder().encode(SECRET));
    };
    await refused(await issuer.sign({ sub: 'alice' }, { exp: null }), 'the token has no exp claim');
    await refused(await hs256(undefined), 'the token has no exp claim');
    const t = now();
    const tooLong = 'the token lives longer than 86400 s, the longest accepted here';
    // Issued 30 h ago for 48 h: refused, though only 18 h are left.
    await refused(await issuer.sign({ sub: 'alice' }, { iat: t - 30 * 3600, exp: t + 18 * 3600 }), tooLong);
    // No iat: counted from now.
    await refused(await hs256(t + 365 * 86_400), tooLong);
    // An iat in the future does not make a year-long token look short.
    await refused(
      await issuer.sign({ sub: 'alice' }, { iat: t + 365 * 86_400, exp: t + 365 * 86_400 + 3600 }),
      tooLong,
    );
    // 24 h exactly: accepted.
    const s = await open(await issuer.sign({ sub: 'alice' }, { iat: t, exp: t + 86_400 }));
    expect(await s.request({ action: 'hello', id: 1 })).toMatchObject({ result: { principal: { id: 'jwt:alice' } } });
    await s.close();
  });

  it('refuses a tenant claim that is not a tenant name, rather than putting it in the default tenant', async () => {
    for (const tenant of ['Default', '', '../default', 'acme corp', 42, ['acme'], null]) {
      await refused(
        await issuer.sign({ sub: 'mallory', tenant, roles: ['admin'] }),
        "the tenant claim 'tenant' is not a valid tenant name (^[a-z0-9][a-z0-9._-]{0,62}$)",
      );
    }
    // No tenant claim at all: OPENCLAW_JWT_DEFAULT_TENANT, `default` unless set.
    const s = await open(await issuer.sign({ sub: 'solo' }));
    expect(await s.request({ action: 'hello', id: 1 })).toMatchObject({
      result: { principal: { id: 'jwt:solo', tenant: 'default' } },
    });
    await s.close();
  });

  it('accepts HS256 tokens with the shared secret, and closes a connection when its token expires', async () => {
    const token = await new SignJWT({ sub: 'svc', roles: ['agent'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(issuer.issuer)
      .setAudience('openclaw')
      .setExpirationTime(now() + 2)
      .sign(new TextEncoder().encode(SECRET));
    const s = await open(token);
    expect(await s.request({ action: 'hello', id: 1 })).toMatchObject({
      result: { principal: { id: 'jwt:svc', roles: ['agent'] } },
    });
    expect(await withTimeout(s.closed, 8000, 'the connection to close when its token expires')).toEqual({
      code: 1008,
      reason: 'credentials expired',
    });
  });

  it('records every refused token in the audit trail, with its reason', async () => {
    const admin = await issuer.sign({ sub: 'operator', roles: ['admin'] });
    const reasons = (await auditTail(cluster.gateways[1]!.httpUrl, admin, '_unauthenticated'))
      .filter((e) => e.type === 'auth.failed')
      .map((e) => e.details?.reason);
    for (const reason of [
      'the token’s algorithm is not allowed',
      'the token’s signature is not valid',
      'the token’s issuer is not accepted',
      'the token has expired',
      'the token is not valid yet',
      'the token’s audience is not accepted',
      'the token has no exp claim',
      'the token lives longer than 86400 s, the longest accepted here',
      "the tenant claim 'tenant' is not a valid tenant name (^[a-z0-9][a-z0-9._-]{0,62}$)",
    ]) {
      expect(reasons).toContain(reason);
    }
  });
});
