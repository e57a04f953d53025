import { auditTail, createApiKey, runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { TestSocket } from '../helpers/ws-client';

const ADMIN = 'bootstrap-admin-key-0123456789';
const SECRET = 'a-server-secret-of-at-least-32-characters!';

/** One tenant can neither see nor call nor register over another's agents, even with the same name. */
describe('tenant isolation of agents', () => {
  let cluster: Cluster;
  const keys: Record<string, string> = {};
  const key = (name: string, role: string, tenant: string): Promise<string> =>
    createApiKey(cluster.gateways[0]!.httpUrl, ADMIN, { name, role, tenant });
  const as = (tenantKey: string, replica: number) =>
    TestSocket.open(cluster.gateways[replica]!.url, { headers: { 'x-api-key': tenantKey } });

  beforeAll(async () => {
    // Private HTTP agent targets allowed, so the HTTP agent below can be a loopback URL (never called).
    cluster = await startCluster({
      replicas: 2,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_API_KEY_SECRET: SECRET, OPENCLAW_HTTP_AGENTS_ALLOW_PRIVATE: 'true' },
    });
    for (const tenant of ['acme', 'globex']) {
      keys[`${tenant}-agent`] = await key(`${tenant}-agent`, 'agent', tenant);
      keys[`${tenant}-caller`] = await key(`${tenant}-caller`, 'caller', tenant);
      keys[`${tenant}-admin`] = await key(`${tenant}-admin`, 'admin', tenant);
    }
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('keeps an agent invisible and uncallable from another tenant', async () => {
    const acmeAgent = await startAgent(cluster.gateways[0]!.url, {
      name: 'billing',
      label: 'acme',
      headers: { 'x-api-key': keys['acme-agent']! },
    });
    const globex = await as(keys['globex-caller']!, 1);
    expect(await globex.request({ action: 'coordinator', id: 1, agent: 'billing', task: 't' })).toMatchObject({
      error: { code: 'AGENT_NOT_FOUND' },
    });
    expect(await globex.request({ action: 'agents.list', id: 2 })).toMatchObject({ ok: true, result: [] });
    const acme = await as(keys['acme-caller']!, 1);
    expect(await acme.request({ action: 'agents.list', id: 3 })).toMatchObject({
      result: [{ name: 'billing', instances: 1 }],
    });
    expect(acmeAgent.received).toHaveLength(0);
    const trail = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'globex');
    expect(
      trail.find((e) => e.type === 'task.routed' && e.outcome === 'AGENT_NOT_FOUND' && e.details?.agent === 'billing'),
    ).toBeDefined();
    await Promise.all([globex.close(), acme.close(), acmeAgent.close()]);
  });

  it('gives each tenant its own agent of the same name', async () => {
    const acmeAgent = await startAgent(cluster.gateways[0]!.url, {
      name: 'shared-name',
      label: 'acme',
      headers: { 'x-api-key': keys['acme-agent']! },
    });
    const globexAgent = await startAgent(cluster.gateways[1]!.url, {
      name: 'shared-name',
      label: 'globex',
      headers: { 'x-api-key': keys['globex-agent']! },
    });
    const acme = await as(keys['acme-caller']!, 1);
    const globex = await as(keys['globex-caller']!, 0);
    for (let i = 0; i < 5; i++) {
      expect(await acme.request({ action: 'coordinator', id: i, agent: 'shared-name', task: 't' })).toMatchObject({
        result: { output: { by: 'acme' } },
      });
      expect(await globex.request({ action: 'coordinator', id: i, agent: 'shared-name', task: 't' })).toMatchObject({
        result: { output: { by: 'globex' } },
      });
    }
    expect(acmeAgent.received).toHaveLength(5);
    expect(globexAgent.received).toHaveLength(5);
    // Neither can read the other's task records.
    const done = await acme.request({ action: 'coordinator', id: 'r', agent: 'shared-name', task: 't' });
    const taskId = (done.result as { taskId: string }).taskId;
    expect(await globex.request({ action: 'task.get', id: 'g', taskId })).toMatchObject({
      error: { code: 'NOT_FOUND' },
    });
    await Promise.all([acme.close(), globex.close(), acmeAgent.close(), globexAgent.close()]);
  });

  it('keeps HTTP agents per tenant too', async () => {
    const gw = cluster.gateways[0]!.httpUrl;
    const registered = await runCli([
      'agent',
      'register',
      '--name',
      'webhook',
      '--url',
      'http://127.0.0.1:9/run',
      '--gateway',
      gw,
      '--api-key',
      keys['acme-admin']!,
    ]);
    expect(registered).toMatchObject({ code: 0, stderr: '' });
    const acmeList = await runCli(['agent', 'list', '--json', '--gateway', gw, '--api-key', keys['acme-admin']!]);
    expect((JSON.parse(acmeList.stdout) as { name: string }[]).map((a) => a.name)).toContain('webhook');
    const globexList = await runCli(['agent', 'list', '--json', '--gateway', gw, '--api-key', keys['globex-admin']!]);
    expect((JSON.parse(globexList.stdout) as { name: string }[]).map((a) => a.name)).not.toContain('webhook');
    const removed = await runCli([
      'agent',
      'remove',
      '--name',
      'webhook',
      '--gateway',
      gw,
      '--api-key',
      keys['globex-admin']!,
    ]);
    expect(removed.code).toBe(1);
    expect(removed.stderr).toMatch(/no HTTP agent named 'webhook'/);
    const globex = await as(keys['globex-caller']!, 1);
    expect(await globex.request({ action: 'coordinator', id: 1, agent: 'webhook', task: 't' })).toMatchObject({
      error: { code: 'AGENT_NOT_FOUND' },
    });
    await globex.close();
  });
});
