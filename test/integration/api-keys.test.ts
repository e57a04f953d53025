import Redis from 'ioredis';
import { auditTail, runCli } from '../helpers/cli';
import { type Cluster, startCluster } from '../helpers/cluster';
import { withTimeout } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const ADMIN = 'bootstrap-admin-key-0123456789';
const SECRET = 'a-server-secret-of-at-least-32-characters!';

/** Stored API keys across two replicas: create with the CLI, use, revoke everywhere. */
describe('stored API keys', () => {
  let cluster: Cluster;
  let a: string;
  let b: string;
  const create = async (args: string[]) => {
    const r = await runCli(['apikey', 'create', ...args, '--url', cluster.gateways[0]!.httpUrl, '--api-key', ADMIN]);
    expect(r.code).toBe(0);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_API_KEY_SECRET: SECRET },
    });
    a = cluster.gateways[0]!.url;
    b = cluster.gateways[1]!.url;
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('prints a new key once and keeps only a keyed hash of it in Redis', async () => {
    const key = await create(['--name', 'billing', '--role', 'caller', '--tenant', 'acme']);
    expect(key).toMatch(/^ock_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const id = key.slice(4, 16);
    const redis = new Redis(cluster.redis.url);
    try {
      const stored = await redis.hgetall(`${cluster.keyPrefix}:{${cluster.keyPrefix}:auth}:apikey:${id}`);
      expect(stored).toMatchObject({ id, name: 'billing', role: 'caller', tenant: 'acme' });
      expect(stored.digest).toMatch(/^[0-9a-f]{64}$/);
      const everything = JSON.stringify(
        await Promise.all(
          (await redis.keys('*')).map((k) => redis.type(k).then((t) => (t === 'hash' ? redis.hgetall(k) : t))),
        ),
      );
      expect(everything).not.toContain(key.slice(17));
    } finally {
      redis.disconnect();
    }
    const socket = await TestSocket.open(b, { headers: { 'x-api-key': key } });
    expect(await socket.request({ action: 'hello', id: 1 })).toMatchObject({
      result: { principal: { id: `apikey:${id}`, tenant: 'acme', roles: ['caller'] } },
    });
    await socket.close();
    const list = await runCli(['apikey', 'list', '--json', '--url', cluster.gateways[1]!.httpUrl, '--api-key', ADMIN]);
    const listed = (JSON.parse(list.stdout) as { id: string }[]).find((k) => k.id === id);
    expect(listed).toMatchObject({ id, name: 'billing', role: 'caller', tenant: 'acme', status: 'active' });
    expect(list.stdout).not.toContain('digest');
    expect(list.stdout).not.toContain(key);
  });

  it('grants what the role allows and nothing more', async () => {
    const caller = await create(['--name', 'c', '--role', 'caller']);
    const agent = await create(['--name', 'g', '--role', 'agent']);
    const asCaller = await TestSocket.open(a, { headers: { authorization: `Bearer ${caller}` } });
    expect(await asCaller.request({ action: 'register', id: 1, name: 'x' })).toMatchObject({
      error: { code: 'FORBIDDEN', message: "missing permission 'agent:register:x'" },
    });
    const asAgent = await TestSocket.open(b, { headers: { 'x-api-key': agent } });
    expect(await asAgent.request({ action: 'register', id: 1, name: 'x' })).toMatchObject({ ok: true });
    expect(await asAgent.request({ action: 'agents.list', id: 'l' })).toMatchObject({ ok: true });
    expect(await asAgent.request({ action: 'coordinator', id: 2, agent: 'x', task: 't' })).toMatchObject({
      error: { code: 'FORBIDDEN' },
    });
    const r = await runCli([
      'apikey',
      'create',
      '--name',
      'n',
      '--role',
      'admin',
      '--url',
      cluster.gateways[0]!.httpUrl,
      '--api-key',
      caller,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/missing permission 'admin'/);
    await Promise.all([asCaller.close(), asAgent.close()]);
  });

  it('closes the live connections of a revoked key on every replica with 1008, and refuses it after', async () => {
    const key = await create(['--name', 'doomed', '--role', 'caller']);
    const id = key.slice(4, 16);
    const onB = await TestSocket.open(b, { headers: { 'x-api-key': key } });
    const onA = await TestSocket.open(a, { headers: { 'x-api-key': key } });
    const revoked = await runCli(['apikey', 'revoke', id, '--url', cluster.gateways[0]!.httpUrl, '--api-key', ADMIN]);
    expect(revoked).toMatchObject({ code: 0, stdout: `revoked API key ${id}\n` });
    // The replica that revoked closes at once; the other on its next check (every second).
    expect(await withTimeout(onA.closed, 5000, 'the connection on the revoking replica to close')).toEqual({
      code: 1008,
      reason: 'credentials revoked',
    });
    expect(await withTimeout(onB.closed, 5000, 'the connection on the other replica to close')).toEqual({
      code: 1008,
      reason: 'credentials revoked',
    });
    await expect(TestSocket.open(b, { headers: { 'x-api-key': key } })).rejects.toMatchObject({
      status: 401,
      json: { error: { code: 'UNAUTHENTICATED', message: 'the API key has been revoked' } },
    });
    const trail = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'default');
    expect(
      trail.filter((e) => e.type === 'connection.closed' && e.principal === `apikey:${id}` && e.details?.code === 1008),
    ).toHaveLength(2);
    expect(trail.find((e) => e.type === 'apikey.revoked' && e.details?.apiKey === id)).toBeDefined();
    const failed = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, '_unauthenticated');
    expect(
      failed.find((e) => e.type === 'auth.failed' && e.details?.reason === 'the API key has been revoked'),
    ).toBeDefined();
    const list = await runCli(['apikey', 'list', '--json', '--url', cluster.gateways[1]!.httpUrl, '--api-key', ADMIN]);
    expect((JSON.parse(list.stdout) as { id: string; status: string }[]).find((k) => k.id === id)?.status).toBe(
      'revoked',
    );
  });

  it('refuses an expired key, and closes its connection when it expires', async () => {
    const key = await create(['--name', 'short', '--role', 'caller', '--expires', '2s']);
    const socket = await TestSocket.open(a, { headers: { 'x-api-key': key } });
    expect(await withTimeout(socket.closed, 6000, 'the connection to close at expiry')).toEqual({
      code: 1008,
      reason: 'credentials expired',
    });
    await expect(TestSocket.open(a, { headers: { 'x-api-key': key } })).rejects.toMatchObject({
      status: 401,
      json: { error: { message: 'the API key has expired' } },
    });
  });

  it('answers bad input with the field at fault, and a tampered key with 401', async () => {
    const url = cluster.gateways[0]!.httpUrl;
    const badRole = await runCli([
      'apikey',
      'create',
      '--name',
      'x',
      '--role',
      'root',
      '--url',
      url,
      '--api-key',
      ADMIN,
    ]);
    expect(badRole.stderr).toMatch(/role: expected one of admin, agent, caller/);
    const badExpiry = await runCli([
      'apikey',
      'create',
      '--name',
      'x',
      '--role',
      'caller',
      '--expires',
      'soon',
      '--url',
      url,
      '--api-key',
      ADMIN,
    ]);
    expect(badExpiry.stderr).toContain(
      '--expires: expected a duration such as 15m, 1h or 7d, an ISO time, or epoch milliseconds; got "soon"',
    );
    const unknown = await runCli(['apikey', 'revoke', '000000000000', '--url', url, '--api-key', ADMIN]);
    expect(unknown).toMatchObject({ code: 1 });
    expect(unknown.stderr).toMatch(/no API key with id '000000000000'/);
    const key = await create(['--name', 'real', '--role', 'caller']);
    const tampered = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
    await expect(TestSocket.open(a, { headers: { 'x-api-key': tampered } })).rejects.toMatchObject({
      status: 401,
      json: { error: { message: 'the API key is not valid' } },
    });
  });
});
