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

  describe("administration: a tenant's admins administer their tenant only", () => {
    const gw = () => cluster.gateways[0]!.httpUrl;
    const api = (path: string, key: string, init: RequestInit = {}) =>
      fetch(`${gw()}${path}`, {
        ...init,
        headers: { 'x-api-key': key, 'content-type': 'application/json', ...(init.headers as object) },
      });
    const json = async (response: Response) => ({ status: response.status, body: (await response.json()) as unknown });
    const deniedIn = async (tenant: string, path: string) =>
      (await auditTail(gw(), ADMIN, tenant)).filter((e) => e.type === 'authz.denied' && e.details?.path === path);

    it("refuses keys for another tenant, the operators' included, and audits the refusal", async () => {
      for (const tenant of ['default', 'globex']) {
        const refused = await json(
          await api('/v1/apikeys', keys['acme-admin']!, {
            method: 'POST',
            body: JSON.stringify({ name: 'escalate', role: 'admin', tenant }),
          }),
        );
        expect(refused).toMatchObject({
          status: 403,
          body: { error: { code: 'FORBIDDEN', message: expect.stringContaining("'cluster:admin'") } },
        });
      }
      expect((await deniedIn('acme', '/v1/apikeys')).length).toBeGreaterThanOrEqual(2);
      // Its own tenant is its to manage; the operators' admins may make keys for any tenant.
      const own = await json(
        await api('/v1/apikeys', keys['acme-admin']!, {
          method: 'POST',
          body: JSON.stringify({ name: 'acme-extra', role: 'caller' }),
        }),
      );
      expect(own).toMatchObject({ status: 201, body: { tenant: 'acme', role: 'caller' } });
      const cli = await runCli(
        [
          'apikey',
          'create',
          '--name',
          'x',
          '--role',
          'admin',
          '--tenant',
          'default',
          '--url',
          gw(),
          '--api-key',
        ].concat(keys['acme-admin']!),
      );
      expect(cli.code).not.toBe(0);
      expect(cli.stderr).toContain("missing permission 'cluster:admin'");
      const byOperator = await json(
        await api('/v1/apikeys', ADMIN, {
          method: 'POST',
          body: JSON.stringify({ name: 'g2', role: 'caller', tenant: 'globex' }),
        }),
      );
      expect(byOperator).toMatchObject({ status: 201, body: { tenant: 'globex' } });
    });

    it("lists only its tenant's keys and cannot revoke another tenant's", async () => {
      const listed = await json(await api('/v1/apikeys', keys['acme-admin']!));
      expect(listed.status).toBe(200);
      expect(new Set((listed.body as { tenant: string }[]).map((k) => k.tenant))).toEqual(new Set(['acme']));
      expect((await api('/v1/apikeys?tenant=globex', keys['acme-admin']!)).status).toBe(403);
      const globexId = keys['globex-caller']!.slice(4, 16);
      const revoke = await json(await api(`/v1/apikeys/${globexId}`, keys['acme-admin']!, { method: 'DELETE' }));
      expect(revoke).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
      expect((await deniedIn('acme', '/v1/apikeys/:id')).length).toBeGreaterThanOrEqual(1);
      // The key still works.
      const globex = await as(keys['globex-caller']!, 1);
      expect(await globex.request({ action: 'ping', id: 1 })).toMatchObject({ ok: true });
      await globex.close();
      const all = await json(await api('/v1/apikeys', ADMIN));
      expect(new Set((all.body as { tenant: string }[]).map((k) => k.tenant))).toEqual(new Set(['acme', 'globex']));
    });

    it('keeps the policy, other audit trails, workers and cluster-wide figures from tenant admins, whatever the policy grants', async () => {
      // Even a binding that hands acme's admin `cluster:admin` gives it nothing outside the operators' tenant.
      const acmeAdminId = `apikey:${keys['acme-admin']!.slice(4, 16)}`;
      const applied = await api('/v1/policy', ADMIN, {
        method: 'PUT',
        headers: { 'content-type': 'application/yaml' },
        body: `roles:\n  root:\n    permissions: ['cluster:admin', '*']\nbindings:\n  - role: root\n    principals: ['${acmeAdminId}']\n`,
      });
      expect(applied.status).toBe(200);
      const refusals: [string, RequestInit][] = [
        ['/v1/policy', {}],
        ['/v1/policy', { method: 'PUT', headers: { 'content-type': 'application/yaml' }, body: 'roles: {}\n' }],
        ['/v1/policy/explain?principal=x&permission=y', {}],
        ['/v1/audit?tenant=globex', {}],
        ['/v1/audit/verify?tenant=default', {}],
        ['/v1/audit/report?tenant=globex&since=1h', {}],
        ['/v1/workers', {}],
        ['/v1/cluster/metrics', {}],
        ['/v1/metrics', {}],
      ];
      for (const [path, init] of refusals) {
        const response = await api(path, keys['acme-admin']!, init);
        expect([path, response.status]).toEqual([path, 403]);
      }
      const denied = await deniedIn('acme', '/v1/policy');
      expect(denied.length).toBeGreaterThanOrEqual(2);
      expect((await deniedIn('acme', '/v1/workers')).length).toBeGreaterThanOrEqual(1);
      // Its own audit trail it reads and verifies; verify covers its tenant only.
      expect((await api('/v1/audit', keys['acme-admin']!)).status).toBe(200);
      const verified = await json(await api('/v1/audit/verify', keys['acme-admin']!));
      expect((verified.body as { tenants: { tenant: string }[] }).tenants.map((t) => t.tenant)).toEqual(['acme']);
      // The cluster view of a tenant: its agents and the replicas' health, no figure spanning tenants.
      const view = await json(await api('/v1/cluster', keys['acme-admin']!));
      expect(view.body).toMatchObject({ scope: 'tenant', workers: [], queue: null, requests: [], validators: [] });
      expect(Object.keys((view.body as { replicas: object[] }).replicas[0]!).sort()).toEqual(
        ['at', 'draining', 'ready', 'replicaId', 'startedAt', 'version'].sort(),
      );
      expect((await json(await api('/v1/cluster', ADMIN))).body).toMatchObject({ scope: 'cluster' });
      const status = await runCli(['gateway', 'status', '--url', gw(), '--api-key', keys['acme-admin']!]);
      expect(status.code).toBe(0);
      expect(status.stdout).toContain("only the operators' tenant sees them");
      expect(status.stdout).not.toMatch(/\bworker\b.*\bactive\b|queue:|clients/);
      const watcher = await as(keys['acme-admin']!, 1);
      expect(await watcher.request({ action: 'cluster.watch', id: 1 })).toMatchObject({ ok: true });
      expect(await watcher.nextEvent('cluster.snapshot')).toMatchObject({ scope: 'tenant', workers: [] });
      await watcher.close();
      await api('/v1/policy', ADMIN, { method: 'PUT', headers: { 'content-type': 'application/yaml' }, body: '{}\n' });
    });

    it('shows each tenant only its own agents in GET /status', async () => {
      const acmeAgent = await startAgent(cluster.gateways[0]!.url, {
        name: 'status-probe-a',
        headers: { 'x-api-key': keys['acme-agent']! },
      });
      const globexAgent = await startAgent(cluster.gateways[0]!.url, {
        name: 'status-probe-g',
        headers: { 'x-api-key': keys['globex-agent']! },
      });
      const names = async (key: string) =>
        ((await json(await api('/status', key))).body as { agents: { name: string; tenant: string }[] }).agents.map(
          (a) => `${a.tenant}/${a.name}`,
        );
      const acme = await names(keys['acme-caller']!);
      expect(acme).toContain('acme/status-probe-a');
      expect(acme.every((n) => n.startsWith('acme/'))).toBe(true);
      expect(await names(keys['globex-admin']!)).toEqual(['globex/status-probe-g']);
      expect(await names(ADMIN)).toEqual(expect.arrayContaining(['acme/status-probe-a', 'globex/status-probe-g']));
      await Promise.all([acmeAgent.close(), globexAgent.close()]);
    });
  });
});
