import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { auditTail, createApiKey, runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const ADMIN = 'bootstrap-admin-key-0123456789';

/** The RBAC policy: applied once, in force on every replica and every live connection. */
describe('RBAC policy', () => {
  let cluster: Cluster;
  let dir: string;
  const cli = (args: string[]) => runCli([...args, '--url', cluster.gateways[0]!.httpUrl, '--api-key', ADMIN]);
  const file = (name: string, lines: string[]) => {
    const p = path.join(dir, name);
    writeFileSync(p, `${lines.join('\n')}\n`);
    return p;
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'openclaw-policy-'));
    cluster = await startCluster({
      replicas: 2,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_API_KEY_SECRET: 'k'.repeat(40) },
    });
  });
  afterAll(async () => {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a policy with an inheritance cycle, naming the line, and applies nothing', async () => {
    const bad = file('cycle.yaml', ['roles:', '  a:', '    inherits: [b]', '  b:', '    inherits: [a]']);
    const r = await cli(['policy', 'apply', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('line 3: roles.a.inherits: inheritance cycle: a → b → a');
    expect((await cli(['policy', 'show'])).stdout).toBe('# no policy applied: built-in roles only\n');
    expect(
      (await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'default')).find((e) => e.type === 'policy.rejected'),
    ).toMatchObject({
      outcome: 'BAD_REQUEST',
      details: { first: 'inheritance cycle: a → b → a' },
    });
  });

  it('grants through a binding on every replica, for connections already open, and explains why', async () => {
    const key = await createApiKey(cluster.gateways[0]!.httpUrl, ADMIN, { name: 'svc', role: 'agent' });
    const id = key.slice(4, 16);
    const agents = [
      await startAgent(cluster.gateways[0]!.url, { name: 'billing-eu', headers: { 'x-api-key': ADMIN } }),
      await startAgent(cluster.gateways[0]!.url, { name: 'hr', headers: { 'x-api-key': ADMIN } }),
    ];
    const caller = await TestSocket.open(cluster.gateways[1]!.url, { headers: { 'x-api-key': key } });
    expect(await caller.request({ action: 'coordinator', id: 1, agent: 'billing-eu', task: 't' })).toMatchObject({
      error: { code: 'FORBIDDEN', message: "missing permission 'agent:invoke:billing-eu'" },
    });
    const good = file('good.yaml', [
      'roles:',
      '  reader:',
      '    permissions: [task:read]',
      '  billing:',
      '    inherits: [reader]',
      '    permissions: ["agent:invoke:billing-*"]',
      'bindings:',
      '  - role: billing',
      `    principals: [apikey:${id}]`,
    ]);
    expect(await cli(['policy', 'apply', good])).toMatchObject({
      code: 0,
      stdout: `applied ${good} as policy version 1\n`,
    });
    let n = 2;
    await waitFor(
      async () =>
        (await caller.request({ action: 'coordinator', id: n++, agent: 'billing-eu', task: 't' })).ok === true,
      {
        what: 'the other replica to apply the policy to the open connection',
      },
    );
    expect(await caller.request({ action: 'coordinator', id: 'hr', agent: 'hr', task: 't' })).toMatchObject({
      error: { code: 'FORBIDDEN' },
    });
    const allowed = await cli(['policy', 'explain', `apikey:${id}`, 'agent:invoke:billing-eu']);
    expect(allowed.stdout).toBe(
      `ALLOWED: apikey:${id} agent:invoke:billing-eu (policy version 1)\n  via binding 1 (principal): role billing grants 'agent:invoke:billing-*'\n`,
    );
    const denied = await cli(['policy', 'explain', `apikey:${id}`, 'agent:invoke:hr']);
    expect(denied.stdout).toMatch(
      /^DENIED: apikey:[0-9a-f]{12} agent:invoke:hr \(policy version 1\)\n {2}its roles \(agent via credential, billing via binding 1 \(principal\)\) do not grant it\n$/,
    );
    const audit = JSON.parse((await cli(['audit', 'tail', '--json'])).stdout) as {
      type: string;
      details?: { version?: number };
    }[];
    expect(audit.find((e) => e.type === 'policy.applied')).toMatchObject({ details: { version: 1 } });
    await Promise.all([caller.close(), ...agents.map((a) => a.close())]);
  });

  it('checks agent replies too: an agent whose role lost the right cannot answer', async () => {
    const key = await createApiKey(cluster.gateways[0]!.httpUrl, ADMIN, { name: 'worker', role: 'agent' });
    const worker = await startAgent(cluster.gateways[1]!.url, {
      name: 'worker',
      answer: 'manual',
      headers: { 'x-api-key': key },
    });
    const caller = await TestSocket.open(cluster.gateways[0]!.url, { headers: { 'x-api-key': ADMIN } });
    caller.send({ action: 'coordinator', id: 'w', agent: 'worker', task: 't', timeoutMs: 3000 });
    const task = await worker.socket.nextEvent('task');
    // The built-in role 'agent' is redefined without the right to act as any agent.
    expect(
      (await cli(['policy', 'apply', file('strict.yaml', ['roles:', '  agent:', '    permissions: [task:read]'])]))
        .code,
    ).toBe(0);
    let n = 0;
    await waitFor(
      async () => {
        const r = await worker.socket.request({
          action: 'task.progress',
          id: `p${n++}`,
          taskId: task.taskId,
          progress: 1,
        });
        return (r.error as { code?: string } | undefined)?.code === 'FORBIDDEN';
      },
      { what: 'the reply to be refused under the new policy' },
    );
    expect(await caller.nextResponse((r) => r.id === 'w', 10_000)).toMatchObject({ error: { code: 'TIMEOUT' } });
    await Promise.all([caller.close(), worker.close()]);
  });
});
