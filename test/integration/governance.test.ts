import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type GatewayClient } from '@openclaw/sdk';
import { auditTail, runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { submitAsync, taskEnd } from '../helpers/tasks';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const ADMIN = 'admin-key-for-governance-tests-0001';

/** The governance pipeline on real replicas: rules, redaction, loops, secrets, dry runs. */
describe('governance', () => {
  let cluster: Cluster;
  const dir = mkdtempSync(path.join(tmpdir(), 'openclaw-governance-'));
  const clients: GatewayClient[] = [];

  /** Applies a policy with `openclaw policy apply` and waits until both replicas use it. */
  async function apply(yaml: string): Promise<void> {
    const file = path.join(dir, `policy-${Date.now()}.yaml`);
    writeFileSync(file, yaml);
    const result = await runCli(['policy', 'apply', file, '--url', cluster.gateways[0]!.httpUrl, '--api-key', ADMIN]);
    if (result.code !== 0) throw new Error(`policy apply failed: ${result.stderr}`);
    // Every replica polls the policy version each second.
    await new Promise((r) => setTimeout(r, 1500));
  }

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, workers: 1, auth: 'apikey', apiKeys: [ADMIN] });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await cluster.stop();
  });

  const headers = { 'x-api-key': ADMIN };

  it('denies by rule with POLICY_DENIED naming the rule, in sync and async mode, and audits it', async () => {
    await apply(`
governance:
  rules:
    - name: big-exports
      when: { agent: vault, task: export, data: { rows: { gt: 1000 } } }
      verdict: deny
      reason: exports over 1000 rows need review
`);
    const [a, b] = cluster.gateways;
    const agent = await startAgent(b!.url, { name: 'vault', headers });
    const caller = await TestSocket.open(a!.url, { headers });
    const small = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'vault',
      task: 'export',
      data: { rows: 10 },
    });
    expect(small.ok).toBe(true);
    const big = await caller.request({
      action: 'coordinator',
      id: 2,
      agent: 'vault',
      task: 'export',
      data: { rows: 5000 },
    });
    expect(big).toMatchObject({
      ok: false,
      error: {
        code: 'POLICY_DENIED',
        retryable: false,
        details: {
          validator: 'rule:big-exports',
          tier: 1,
          reason: 'exports over 1000 rows need review',
          direction: 'request',
        },
      },
    });
    expect(agent.received).toHaveLength(1);
    // Async: the worker judges the attempt; the task ends rejected, not retried.
    const taskId = await submitAsync(caller, { agent: 'vault', task: 'export', data: { rows: 5000 } });
    expect(await taskEnd(caller, taskId)).toMatchObject({ status: 'rejected', error: { code: 'POLICY_DENIED' } });
    expect(agent.received).toHaveLength(1);
    const audit = await auditTail(a!.httpUrl, ADMIN, 'default');
    expect(audit.filter((e) => e.type === 'governance.denied').map((e) => e.details)).toContainEqual(
      expect.objectContaining({ validator: 'rule:big-exports', tier: 1, agent: 'vault', task: 'export' }),
    );
    await Promise.all([caller.close(), agent.close()]);
  });

  it('masks what a redact rule names and the PII it finds before the agent sees the request', async () => {
    await apply(`
governance:
  rules:
    - name: card-numbers
      when: { agent: shop }
      verdict: redact
      redact: [card.number]
  pii: { action: redact, kinds: [email], directions: [request] }
`);
    const agent = await startAgent(cluster.gateways[1]!.url, { name: 'shop', headers });
    const caller = await TestSocket.open(cluster.gateways[0]!.url, { headers });
    const reply = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'shop',
      task: 'buy',
      data: { card: { number: '4111 1111 1111 1111', expiry: '12/30' }, note: 'receipt to ann@example.com' },
    });
    expect(reply.ok).toBe(true);
    expect(agent.received[0]!.data).toEqual({
      card: { number: '[redacted]', expiry: '12/30' },
      note: 'receipt to [redacted:email]',
    });
    await Promise.all([caller.close(), agent.close()]);
  });

  it("redacts a secret in an agent's output before it reaches the caller", async () => {
    await apply(`
governance:
  secrets: { action: redact, directions: [response] }
`);
    const agent = await startAgent(cluster.gateways[1]!.url, {
      name: 'leaky',
      headers,
      answer: (t) => ({
        action: 'task.result',
        taskId: t.taskId,
        output: { config: 'aws_key=AKIAIOSFODNN7EXAMPLE region=eu' },
      }),
    });
    const caller = await TestSocket.open(cluster.gateways[0]!.url, { headers });
    const reply = await caller.request({ action: 'coordinator', id: 1, agent: 'leaky', task: 'dump' });
    expect(reply).toMatchObject({
      ok: true,
      result: { output: { config: 'aws_key=[redacted:aws-access-key] region=eu' } },
    });
    await Promise.all([caller.close(), agent.close()]);
  });

  it('stops a loop: agent a calls b, b calls a again, and the second call is refused', async () => {
    await apply(`
governance:
  chains: { maxHops: 8 }
`);
    const clientA = await connect({ url: cluster.gateways[0]!.url, apiKey: ADMIN });
    const clientB = await connect({ url: cluster.gateways[1]!.url, apiKey: ADMIN });
    clients.push(clientA, clientB);
    const a = clientA.agent('ping-a');
    a.handle('start', (data, ctx) => clientA.call('ping-b', 'bounce', data, { parentTaskId: ctx.taskId }));
    await a.register();
    const b = clientB.agent('ping-b');
    b.handle('bounce', (data, ctx) => clientB.call('ping-a', 'start', data, { parentTaskId: ctx.taskId }));
    await b.register();
    const caller = await TestSocket.open(cluster.gateways[0]!.url, { headers });
    const reply = await caller.request(
      { action: 'coordinator', id: 1, agent: 'ping-a', task: 'start', data: 1 },
      15_000,
    );
    expect(reply.ok).toBe(false);
    const audit = await auditTail(cluster.gateways[1]!.httpUrl, ADMIN, 'default');
    expect(audit.filter((e) => e.type === 'governance.denied').map((e) => e.details)).toContainEqual(
      expect.objectContaining({ validator: 'chains', reason: 'loop: ping-a → ping-b → ping-a' }),
    );
    await caller.close();
  });

  it('records what a dry-run rule would deny without blocking it', async () => {
    await apply(`
governance:
  rules:
    - name: trial-limit
      when: { agent: echo-dry }
      verdict: deny
      dryRun: true
`);
    const agent = await startAgent(cluster.gateways[1]!.url, { name: 'echo-dry', headers });
    const caller = await TestSocket.open(cluster.gateways[0]!.url, { headers });
    const reply = await caller.request({ action: 'coordinator', id: 1, agent: 'echo-dry', task: 't', data: 'x' });
    expect(reply.ok).toBe(true);
    const audit = await waitFor(
      async () =>
        (await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'default')).find(
          (e) =>
            e.type === 'governance.would-deny' &&
            (e.details as { validator?: string }).validator === 'rule:trial-limit',
        ),
      { what: 'the would-deny entry' },
    );
    expect(audit.outcome).toBe('would-deny');
    const metrics = (await (await fetch(`${cluster.gateways[0]!.httpUrl}/v1/metrics`, { headers })).json()) as {
      governance: Record<string, { wouldDeny: number; denies: number }>;
    };
    expect(metrics.governance['rule:trial-limit']).toMatchObject({ wouldDeny: 1, denies: 0 });
    await Promise.all([caller.close(), agent.close()]);
  });

  it('refuses a governance section with a mistake, naming its line and field', async () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'governance:\n  rules:\n    - name: x\n      verdict: redact\n');
    const result = await runCli(['policy', 'apply', file, '--url', cluster.gateways[0]!.httpUrl, '--api-key', ADMIN]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('line 3');
    expect(result.stderr).toContain('governance.rules.0.redact');
  });
});
