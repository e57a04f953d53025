import { type Cluster, startCluster } from '../helpers/cluster';
import { OAuthServer } from '../helpers/oauth-server';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

/** OAuth 2.0 resource server: opaque access tokens introspected (RFC 7662) at a real authorization server. */
describe('OAuth 2.0 access tokens', () => {
  let cluster: Cluster;
  let as: OAuthServer;
  let foreign: OAuthServer;
  const open = (token: string, replica = 0) =>
    TestSocket.open(cluster.gateways[replica]!.url, { headers: { authorization: `Bearer ${token}` } });
  const refused = (token: string, message: string) =>
    expect(open(token)).rejects.toMatchObject({ status: 401, json: { error: { code: 'UNAUTHENTICATED', message } } });

  beforeAll(async () => {
    [as, foreign] = await Promise.all([OAuthServer.start(), OAuthServer.start()]);
    cluster = await startCluster({
      replicas: 2,
      auth: 'jwt',
      env: {
        OPENCLAW_JWT_ISSUER: as.issuer,
        OPENCLAW_JWT_AUDIENCE: 'urn:openclaw',
        OPENCLAW_OAUTH_CLIENT_ID: 'gateway',
        OPENCLAW_OAUTH_CLIENT_SECRET: 'gateway-secret',
        OPENCLAW_AUTH_MAX_FAILURES: '0',
      },
    });
  });
  afterAll(async () => {
    await cluster.stop();
    await Promise.all([as.stop(), foreign.stop()]);
  });

  it('connects with a client-credentials token, as its client, with its scopes', async () => {
    const token = await as.token('urn:openclaw');
    for (const replica of [0, 1]) {
      const s = await open(token, replica);
      expect(await s.request({ action: 'hello', id: 1 })).toMatchObject({ result: { principal: { id: 'oauth:svc' } } });
      // The scope grants invoking 'echo' and nothing else.
      expect(await s.request({ action: 'coordinator', id: 2, agent: 'echo', task: 't' })).toMatchObject({
        error: { code: 'AGENT_NOT_FOUND' },
      });
      expect(await s.request({ action: 'coordinator', id: 3, agent: 'other', task: 't' })).toMatchObject({
        error: { code: 'FORBIDDEN' },
      });
      expect(await s.request({ action: 'agents.list', id: 4 })).toMatchObject({
        error: { code: 'FORBIDDEN', message: "missing permission 'agent:list'" },
      });
      await s.close();
    }
  });

  it('refuses a token for another audience', async () => {
    await refused(await as.token('urn:other'), 'the token’s audience is not accepted');
  });

  it('refuses an expired token', async () => {
    const token = await as.token('urn:short'); // a 1 s lifetime
    await waitFor(async () => !(await as.introspect(token)).active, {
      what: 'the authorization server to report the token expired',
      timeoutMs: 5_000,
      intervalMs: 100,
    });
    await refused(token, 'the access token is not active (unknown, expired or revoked)');
  });

  it('refuses a revoked token', async () => {
    const token = await as.token('urn:openclaw');
    await as.revoke(token);
    await refused(token, 'the access token is not active (unknown, expired or revoked)');
  });

  it('maps the tenant claim of an introspected token, and refuses one that is not a tenant name', async () => {
    const s = await open(await as.token('urn:acme'));
    expect(await s.request({ action: 'hello', id: 1 })).toMatchObject({
      result: { principal: { id: 'oauth:svc', tenant: 'acme' } },
    });
    await s.close();
    await refused(
      await as.token('urn:bad-tenant'),
      "the tenant claim 'tenant' is not a valid tenant name (^[a-z0-9][a-z0-9._-]{0,62}$)",
    );
  });

  it('refuses a token that lives longer than 24 h (OPENCLAW_JWT_MAX_LIFETIME_S)', async () => {
    await refused(await as.token('urn:long'), 'the token lives longer than 86400 s, the longest accepted here');
  });

  it('refuses a token from another issuer', async () => {
    await refused(await foreign.token('urn:openclaw'), 'the access token is not active (unknown, expired or revoked)');
  });
});
