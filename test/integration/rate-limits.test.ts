import { auditTail, createApiKey } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import { type ResponseFrame, TestSocket } from '../helpers/ws-client';

const ADMIN = 'bootstrap-admin-key-0123456789';
const SECRET = 'a-server-secret-of-at-least-32-characters!';

function codes(responses: ResponseFrame[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of responses) {
    const code = r.ok ? 'ok' : String((r.error as { code: string }).code);
    out[code] = (out[code] ?? 0) + 1;
  }
  return out;
}

/** Cluster-wide call limits: one bucket per principal and per tenant in Redis, whatever replica a call hits. */
describe('cluster-wide rate limits', () => {
  let cluster: Cluster;
  const key = (name: string, tenant: string, role = 'caller'): Promise<string> =>
    createApiKey(cluster.gateways[0]!.httpUrl, ADMIN, { name, role, tenant });
  /** An echo agent in a tenant (agents are per tenant). */
  const agentIn = async (tenant: string, replica: number) =>
    startAgent(cluster.gateways[replica]!.url, {
      name: 'echo',
      concurrency: 64,
      headers: { 'x-api-key': await key(`agent-${tenant}`, tenant, 'agent') },
    });
  /** `n` calls from one principal, alternating between the two replicas. */
  const burst = async (apiKey: string, n: number): Promise<ResponseFrame[]> => {
    const sockets = await Promise.all(
      cluster.gateways.map((g) => TestSocket.open(g.url, { headers: { 'x-api-key': apiKey } })),
    );
    const out: ResponseFrame[] = [];
    for (let i = 0; i < n; i++) {
      out.push(await sockets[i % 2]!.request({ action: 'coordinator', id: i, agent: 'echo', task: 't' }));
    }
    await Promise.all(sockets.map((s) => s.close()));
    return out;
  };

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: {
        OPENCLAW_API_KEY_SECRET: SECRET,
        OPENCLAW_PRINCIPAL_RATE: '2',
        OPENCLAW_PRINCIPAL_BURST: '10',
        OPENCLAW_TENANT_RATE: '1',
        OPENCLAW_TENANT_BURST: '15',
        OPENCLAW_ROLE_RATES: 'admin=100000/100000',
      },
    });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('limits one principal across both replicas together, not per replica', async () => {
    const agents = [await agentIn('one', 1), await agentIn('two', 0)];
    const responses = await burst(await key('p1', 'one'), 30);
    const counts = codes(responses);
    // Burst 10 plus 2 per second of refill: per-replica buckets would have let about 20 through.
    expect(counts.ok).toBeGreaterThanOrEqual(10);
    expect(counts.ok).toBeLessThanOrEqual(14);
    expect(counts.ok! + counts.RATE_LIMITED!).toBe(30);
    const refused = responses.find((r) => !r.ok)!;
    expect(refused.error).toMatchObject({
      code: 'RATE_LIMITED',
      retryable: true,
      retryAfterMs: expect.any(Number),
      details: { scope: 'principal' },
    });
    const routed = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'one');
    expect(routed.filter((e) => e.type === 'task.routed' && e.outcome === 'RATE_LIMITED').length).toBe(
      counts.RATE_LIMITED,
    );
    // Another principal has its own bucket.
    expect(codes(await burst(await key('p2', 'two'), 5))).toEqual({ ok: 5 });
    await Promise.all(agents.map((a) => a.close()));
  });

  it('limits a tenant over all its principals', async () => {
    const agent = await agentIn('shared', 0);
    const [k1, k2] = [await key('t1', 'shared'), await key('t2', 'shared')];
    const first = codes(await burst(k1, 10));
    const second = await burst(k2, 10);
    // Each principal is within its own burst of 10; together they exceed the tenant's 15.
    expect(first).toEqual({ ok: 10 });
    expect(codes(second).ok).toBeLessThanOrEqual(7);
    expect(second.find((r) => !r.ok)?.error).toMatchObject({ code: 'RATE_LIMITED', details: { scope: 'tenant' } });
    await agent.close();
  });

  it('gives a role its own limit', async () => {
    // The static key is an admin in tenant default, whose role limit is 100000/s; tenant default's
    // bucket (burst 15) still applies.
    const agent = await startAgent(cluster.gateways[1]!.url, {
      name: 'echo',
      concurrency: 64,
      headers: { 'x-api-key': ADMIN },
    });
    const responses = await burst(ADMIN, 30);
    // Without the role's limit, the principal's own burst of 10 would stop it first ('principal');
    // with it, only the tenant's burst of 15 does.
    expect(codes(responses).ok).toBeGreaterThanOrEqual(15);
    expect(codes(responses).ok).toBeLessThanOrEqual(17);
    expect(
      responses
        .filter((r) => !r.ok)
        .every((r) => (r.error as { details?: { scope?: string } }).details?.scope === 'tenant'),
    ).toBe(true);
    await agent.close();
  });
});

describe('lockout after repeated failed authentication', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: {
        OPENCLAW_AUTH_MAX_FAILURES: '3',
        OPENCLAW_AUTH_LOCKOUT_MS: '60000',
        OPENCLAW_TRUSTED_PROXIES: '127.0.0.1',
      },
    });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('refuses an address everywhere after too many bad keys, whatever it sends next', async () => {
    const [a, b] = [cluster.gateways[0]!, cluster.gateways[1]!];
    const from = (address: string, apiKey: string) => ({
      headers: { 'x-forwarded-for': address, 'x-api-key': apiKey },
    });
    for (let i = 0; i < 3; i++) {
      await expect(TestSocket.open(a.url, from('10.0.0.1', `wrong-key-${i}-0123456789`))).rejects.toMatchObject({
        status: 401,
      });
    }
    await expect(TestSocket.open(a.url, from('10.0.0.1', ADMIN))).rejects.toMatchObject({
      status: 429,
      json: {
        error: { code: 'RATE_LIMITED', message: 'too many failed authentications from this address; try again later' },
      },
    });
    // Cluster-wide: the other replica refuses it too, on HTTP as well.
    await expect(TestSocket.open(b.url, from('10.0.0.1', ADMIN))).rejects.toMatchObject({ status: 429 });
    const status = await fetch(`${b.httpUrl}/status`, from('10.0.0.1', ADMIN));
    expect(status.status).toBe(429);
    expect(Number(status.headers.get('retry-after'))).toBeGreaterThan(50);
    // Another address, through the same trusted proxy, is not affected.
    const other = await TestSocket.open(b.url, from('10.0.0.2', ADMIN));
    await other.close();
    const trail = await auditTail(a.httpUrl, ADMIN, '_unauthenticated');
    expect(trail.filter((e) => e.type === 'auth.failed' && e.details?.address === '10.0.0.1')).toHaveLength(3);
    expect(
      trail.filter((e) => e.type === 'auth.locked' && e.details?.address === '10.0.0.1').length,
    ).toBeGreaterThanOrEqual(3);
  });
});

describe('connection cap per principal', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_API_KEY_SECRET: SECRET, OPENCLAW_ROLE_RATES: 'caller=1000/1000/2' },
    });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('counts a principal’s connections on every replica together', async () => {
    const key = await createApiKey(cluster.gateways[0]!.httpUrl, ADMIN, { name: 'c', role: 'caller' });
    const [a, b] = [cluster.gateways[0]!.url, cluster.gateways[1]!.url];
    const first = await TestSocket.open(a, { headers: { 'x-api-key': key } });
    const second = await TestSocket.open(b, { headers: { 'x-api-key': key } });
    await expect(TestSocket.open(a, { headers: { 'x-api-key': key } })).rejects.toMatchObject({
      status: 429,
      json: { error: { code: 'RATE_LIMITED', details: { scope: 'connections', limit: 2 } } },
    });
    // The admin's own connections are counted apart.
    const admin = await TestSocket.open(b, { headers: { 'x-api-key': ADMIN } });
    await first.close();
    // The slot freed by the close is counted again on every replica: a third connection is let in.
    const third = await waitFor(() => TestSocket.open(a, { headers: { 'x-api-key': key } }), {
      what: 'a connection in the slot the first one freed',
      timeoutMs: 3_000,
      intervalMs: 20,
    });
    await Promise.all([second.close(), third.close(), admin.close()]);
  });
});
