import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type GatewayClient } from '@openclaw/sdk';
import { applyPolicy, auditTail, runCli } from '../helpers/cli';
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

  /** Applies a policy with `openclaw policy apply` and waits until every replica and the worker use it. */
  const apply = (yaml: string) => applyPolicy(cluster, ADMIN, yaml);

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
    // The compliance report of the last hour lists the rule's denial in its own section.
    const report = await runCli([
      'audit',
      'report',
      '--since',
      '1h',
      '--format',
      'json',
      '--url',
      a!.httpUrl,
      '--api-key',
      ADMIN,
    ]);
    expect(report.code).toBe(0);
    expect((JSON.parse(report.stdout) as { governanceDenials: unknown[] }).governanceDenials).toContainEqual(
      expect.objectContaining({ validator: 'rule:big-exports', agent: 'vault', task: 'export' }),
    );
    await Promise.all([caller.close(), agent.close()]);
  });

  it('gives a rule that matches on role the same verdict over WebSocket and over HTTP, for tasks and workflows', async () => {
    await apply(`
governance:
  rules:
    - name: no-admin-purges
      when: { role: admin, agent: archive, task: purge }
      verdict: deny
      reason: admins do not purge the archive
`);
    const [a, b] = cluster.gateways;
    const agent = await startAgent(b!.url, { name: 'archive', headers });
    const caller = await TestSocket.open(a!.url, { headers });
    const http = async (path: string, body: unknown): Promise<string> => {
      const res = await fetch(`${a!.httpUrl}${path}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(202);
      const { taskId } = (await res.json()) as { taskId: string };
      await caller.request({ action: 'task.subscribe', id: `sub-${taskId}`, taskId });
      return taskId;
    };
    const workflow = { steps: [{ id: 'purge', agent: 'archive', task: 'purge' }] };
    const ended = {
      wsTask: await taskEnd(caller, await submitAsync(caller, { agent: 'archive', task: 'purge', data: {} })),
      httpTask: await taskEnd(caller, await http('/v1/tasks', { agent: 'archive', task: 'purge', data: {} })),
      wsWorkflow: await taskEnd(
        caller,
        ((await caller.request({ action: 'workflow.start', id: 'wf', workflow })).result as { taskId: string }).taskId,
      ),
      httpWorkflow: await taskEnd(caller, await http('/v1/workflows', { workflow })),
    };
    for (const task of [ended.wsTask, ended.httpTask]) {
      expect(task).toMatchObject({ status: 'rejected', error: { code: 'POLICY_DENIED' } });
    }
    for (const wf of [ended.wsWorkflow, ended.httpWorkflow]) {
      expect(wf).toMatchObject({
        status: 'failed',
        error: { details: { step: 'purge', error: { code: 'POLICY_DENIED' } } },
      });
    }
    // A task the rule does not match passes over both.
    const other = await http('/v1/tasks', { agent: 'archive', task: 'list', data: {} });
    expect(await taskEnd(caller, other)).toMatchObject({ status: 'completed' });
    expect(agent.received.map((t) => t.task)).toEqual(['list']);
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

  it('asks an HTTP classifier (tier 3), and decides by its fail mode when it is too slow', async () => {
    let slow = false;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        const question = JSON.parse(body) as { data?: { text?: string }; input?: string };
        const answer = (): void => {
          if (req.url === '/moderation') {
            const flagged = (question.input ?? '').includes('insult');
            res
              .writeHead(200, { 'content-type': 'application/json' })
              .end(JSON.stringify({ results: [{ flagged, categories: { harassment: flagged, violence: false } }] }));
            return;
          }
          const text = question.data?.text ?? '';
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(
              JSON.stringify(
                text.includes('forbidden') ? { verdict: 'deny', reason: 'off-topic request' } : { verdict: 'allow' },
              ),
            );
        };
        if (slow) setTimeout(answer, 1500);
        else answer();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const agent = await startAgent(cluster.gateways[1]!.url, { name: 'writer', headers });
      const caller = await TestSocket.open(cluster.gateways[0]!.url, { headers });
      const call = (id: number, text: string) =>
        caller.request({ action: 'coordinator', id, agent: 'writer', task: 'write', data: { text } }, 10_000);
      try {
        await apply(`
governance:
  models:
    - { name: topic, url: ${url}/classify, directions: [request], timeoutMs: 500 }
    - { name: moderation, url: ${url}/moderation, format: moderation, directions: [request], timeoutMs: 500 }
`);
        expect((await call(1, 'a poem')).ok).toBe(true);
        expect(await call(2, 'something forbidden')).toMatchObject({
          ok: false,
          error: { code: 'POLICY_DENIED', details: { validator: 'model:topic', tier: 3, reason: 'off-topic request' } },
        });
        expect(await call(3, 'an insult')).toMatchObject({
          ok: false,
          error: { code: 'POLICY_DENIED', details: { validator: 'model:moderation', reason: 'flagged: harassment' } },
        });
        slow = true;
        // Fail-closed (the default): a classifier that does not answer within its budget denies.
        expect(await call(4, 'a poem')).toMatchObject({
          ok: false,
          error: { code: 'POLICY_DENIED', details: { reason: 'did not answer within 500 ms (fail-closed)' } },
        });
        await apply(`
governance:
  models:
    - { name: topic, url: ${url}/classify, directions: [request], timeoutMs: 300, failMode: open }
`);
        // Fail-open: the call goes on, and the failure is recorded.
        expect((await call(5, 'a poem')).ok).toBe(true);
        const failed = await waitFor(
          async () =>
            (await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'default')).find(
              (e) =>
                e.type === 'governance.validator-failed' &&
                (e.details as { validator?: string }).validator === 'model:topic',
            ),
          { what: 'the validator-failed entry' },
        );
        expect(failed.details).toMatchObject({ tier: 3, failed: 'timeout' });
      } finally {
        await Promise.all([caller.close(), agent.close()]);
      }
    } finally {
      server.close();
    }
  });

  it('asks a validator agent connected to the gateway, which may deny or redact; a silent one hits its budget', async () => {
    const judge = await startAgent(cluster.gateways[0]!.url, {
      name: 'judge',
      headers,
      answer: (t) => {
        const question = t.data as { data: { text: string } };
        const text = question.data.text;
        if (text === 'hang') return undefined;
        const output = text.includes('secret plan')
          ? { verdict: 'redact', reason: 'confidential', data: { text: text.replace('secret plan', '***') } }
          : text.includes('bad')
            ? { verdict: 'deny', reason: 'the judge says no' }
            : { verdict: 'allow' };
        return { action: 'task.result', taskId: t.taskId, output };
      },
    });
    const agent = await startAgent(cluster.gateways[1]!.url, { name: 'scribe', headers });
    const caller = await TestSocket.open(cluster.gateways[1]!.url, { headers });
    const call = (id: number, text: string) =>
      caller.request({ action: 'coordinator', id, agent: 'scribe', task: 'note', data: { text } }, 10_000);
    await apply(`
governance:
  models:
    - { name: judge, agent: judge, directions: [request], timeoutMs: 400 }
`);
    expect((await call(1, 'fine words')).ok).toBe(true);
    expect(await call(2, 'bad words')).toMatchObject({
      ok: false,
      error: { code: 'POLICY_DENIED', details: { validator: 'model:judge', reason: 'the judge says no' } },
    });
    expect((await call(3, 'the secret plan is ready')).ok).toBe(true);
    expect(agent.received.at(-1)!.data).toEqual({ text: 'the *** is ready' });
    expect(await call(4, 'hang')).toMatchObject({
      ok: false,
      error: {
        code: 'POLICY_DENIED',
        details: { validator: 'model:judge', reason: 'did not answer within 400 ms (fail-closed)' },
      },
    });
    // The judge saw the messages, and its own answers were not judged (no loop through itself).
    expect(judge.received.map((t) => (t.data as { agent: string }).agent)).toEqual([
      'scribe',
      'scribe',
      'scribe',
      'scribe',
    ]);
    await Promise.all([caller.close(), agent.close(), judge.close()]);
  });

  it('refuses calls once a budget is used up, and lets them through again when its window refills', async () => {
    await apply(`
governance:
  budgets:
    - { name: trial, per: agent, agent: metered, windowMs: 2000, limit: 2 }
    - { name: spend, per: tenant, agent: priced, windowMs: 60000, limit: 10, measure: cost, costPath: usage.cost }
`);
    const metered = await startAgent(cluster.gateways[1]!.url, { name: 'metered', headers });
    const priced = await startAgent(cluster.gateways[1]!.url, {
      name: 'priced',
      headers,
      answer: (t) => ({ action: 'task.result', taskId: t.taskId, output: { usage: { cost: 6 } } }),
    });
    const caller = await TestSocket.open(cluster.gateways[0]!.url, { headers });
    let id = 0;
    const call = (agent: string) => caller.request({ action: 'coordinator', id: ++id, agent, task: 't' });
    // Calls: two per window. The windows are fixed 2 s slices of the clock: wait for the next one to
    // begin, so that the first three calls fall in the same window.
    await new Promise((r) => setTimeout(r, 2000 - (Date.now() % 2000) + 50));
    expect((await call('metered')).ok).toBe(true);
    expect((await call('metered')).ok).toBe(true);
    const over = await call('metered');
    expect(over).toMatchObject({
      ok: false,
      error: { code: 'POLICY_DENIED', details: { validator: 'budget:trial', tier: 2 } },
    });
    expect((over.error as { message: string }).message).toMatch(
      /budget 'trial' is used up \(2 of 2 calls in this window\); it refills in \d+ s/,
    );
    expect(metered.received).toHaveLength(2);
    await waitFor(async () => (await call('metered')).ok, { what: 'the budget refilled', timeoutMs: 5000 });
    // Cost: what the agent reports counts; 6 + 6 is over 10, so the third call is refused.
    expect((await call('priced')).ok).toBe(true);
    expect((await call('priced')).ok).toBe(true);
    expect(await call('priced')).toMatchObject({ ok: false, error: { details: { validator: 'budget:spend' } } });
    expect(priced.received).toHaveLength(2);
    await Promise.all([caller.close(), metered.close(), priced.close()]);
  });

  it('refuses input that does not match the JSON Schema the agent declared for the task, before dispatch', async () => {
    const socket = await TestSocket.open(cluster.gateways[1]!.url, { headers });
    const bad = await socket.request({
      action: 'register',
      id: 0,
      name: 'accounts',
      inputSchemas: { create: { type: 'nonsense' } },
    });
    expect(bad).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', details: [{ field: 'inputSchemas.create' }] },
    });
    const registered = await socket.request({
      action: 'register',
      id: 1,
      name: 'accounts',
      inputSchemas: {
        create: {
          type: 'object',
          required: ['email'],
          properties: { email: { type: 'string' }, age: { type: 'integer', minimum: 0 } },
        },
      },
    });
    expect(registered.ok).toBe(true);
    const caller = await TestSocket.open(cluster.gateways[0]!.url, { headers });
    const refused = await caller.request({
      action: 'coordinator',
      id: 2,
      agent: 'accounts',
      task: 'create',
      data: { email: 'a@b.c', age: -1 },
    });
    expect(refused).toMatchObject({
      ok: false,
      error: {
        code: 'POLICY_DENIED',
        details: {
          validator: 'input-schema',
          tier: 1,
          reason:
            "the input does not match the schema agent 'accounts' declared for task 'create': data.age must be >= 0",
        },
      },
    });
    const call = caller.request({
      action: 'coordinator',
      id: 3,
      agent: 'accounts',
      task: 'create',
      data: { email: 'a@b.c', age: 30 },
    });
    const task = await socket.nextEvent('task', 10_000);
    expect(task.data).toEqual({ email: 'a@b.c', age: 30 });
    socket.send({ action: 'task.result', taskId: task.taskId, output: 'created' });
    expect((await call).ok).toBe(true);
    await Promise.all([caller.close(), socket.close()]);
  });

  it('reports the verdicts per validator over a window (openclaw governance report)', async () => {
    const report = await runCli([
      'governance',
      'report',
      '--json',
      '--url',
      cluster.gateways[0]!.httpUrl,
      '--api-key',
      ADMIN,
    ]);
    expect(report.code).toBe(0);
    const rows = JSON.parse(report.stdout) as {
      validator: string;
      tier: number;
      denied: number;
      wouldDeny: number;
      failed: number;
      redacted: number;
    }[];
    const row = (name: string) => rows.find((r) => r.validator === name);
    expect(row('rule:big-exports')).toMatchObject({ tier: 1, denied: 2 });
    expect(row('rule:trial-limit')).toMatchObject({ wouldDeny: 1, denied: 0 });
    expect(row('model:topic')?.failed).toBeGreaterThanOrEqual(1);
    expect(row('secrets')).toMatchObject({ tier: 2, redacted: 1 });
    const table = await runCli(['governance', 'report', '--url', cluster.gateways[0]!.httpUrl, '--api-key', ADMIN]);
    expect(table.stdout).toMatch(/rule:big-exports/);
  });

  it('tests a policy on a message without sending anything (openclaw policy test)', async () => {
    const policy = path.join(dir, 'test-policy.yaml');
    writeFileSync(
      policy,
      'governance:\n  rules:\n    - { name: no-refunds, when: { agent: billing, task: refund }, verdict: deny, reason: refunds are manual }\n  pii: { action: redact, kinds: [email] }\n',
    );
    const denied = path.join(dir, 'refund.json');
    writeFileSync(denied, JSON.stringify({ agent: 'billing', task: 'refund', data: { amount: 5 } }));
    const result = await runCli(['policy', 'test', policy, denied]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^DENY\n {2}tier 1 {2}rule:no-refunds +deny +\d+\.\d+ ms {2}refunds are manual/);
    const masked = path.join(dir, 'charge.json');
    writeFileSync(masked, JSON.stringify({ agent: 'billing', task: 'charge', data: { to: 'ann@example.com' } }));
    const passes = await runCli(['policy', 'test', policy, masked]);
    expect(passes.code).toBe(0);
    expect(passes.stdout).toContain('tier 2  pii');
    expect(passes.stdout).toContain('passes as: {"to":"[redacted:email]"}');
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

describe('custom validators', () => {
  it('loads the modules named in OPENCLAW_VALIDATORS and runs them on every call', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'openclaw-validators-'));
    const module = path.join(dir, 'no-shouting.js');
    writeFileSync(
      module,
      `module.exports = { name: 'no-shouting', tier: 1, check: (m) => /[A-Z]{12}/.test(JSON.stringify(m.data)) ? { decision: 'deny', reason: 'shouting' } : { decision: 'allow' } };\n`,
    );
    const cluster = await startCluster({ replicas: 1, env: { OPENCLAW_VALIDATORS: module } });
    try {
      const agent = await startAgent(cluster.gateways[0]!.url, { name: 'listener' });
      const caller = await TestSocket.open(cluster.gateways[0]!.url);
      expect(
        (await caller.request({ action: 'coordinator', id: 1, agent: 'listener', task: 't', data: 'hello' })).ok,
      ).toBe(true);
      expect(
        await caller.request({ action: 'coordinator', id: 2, agent: 'listener', task: 't', data: 'HELLOHELLOHELLO' }),
      ).toMatchObject({
        ok: false,
        error: { code: 'POLICY_DENIED', details: { validator: 'custom:no-shouting', tier: 1, reason: 'shouting' } },
      });
      await Promise.all([caller.close(), agent.close()]);
    } finally {
      await cluster.stop();
    }
    // A module that exports no validator stops the replica, naming it.
    const broken = path.join(dir, 'broken.js');
    writeFileSync(broken, 'module.exports = { name: "x" };\n');
    await expect(startCluster({ replicas: 1, env: { OPENCLAW_VALIDATORS: broken } })).rejects.toThrow(
      /custom validator .*broken\.js: its tier must be 1, 2 or 3/,
    );
  });
});
