import { connect, type GatewayError } from '@openclaw/sdk';
import { applyPolicy, auditTail, createApiKey, runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { NginxProcess } from '../helpers/nginx';
import { taskEnd, taskStatuses } from '../helpers/tasks';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const ADMIN = 'admin-key-for-approval-tests-0001';
const SECRET = 'a'.repeat(40);
/** Transfers over 1000 wait for one approver. */
const LARGE_TRANSFERS_NEED_APPROVAL = `
governance:
  rules:
    - name: large-transfers
      when: { agent: payments, task: transfer, data: { amount: { gt: 1000 } } }
      verdict: require-approval
      reason: transfers over 1000 need a second pair of eyes
`;

/**
 * Human approvals on real replicas, a worker and real API keys: a sync call held on one replica and
 * decided on the other, a quorum of two with a role, expiry, rejection, a changed payload refused,
 * and an approved message going through exactly once.
 */
describe('approvals', () => {
  let cluster: Cluster;
  let keys: { caller: string; agent: string; approver1: string; approver2: string; operator: string };

  const apply = (yaml: string) => applyPolicy(cluster, ADMIN, yaml);

  /** `openclaw approvals ...` against a replica, as a principal; the parsed `--json` output. */
  async function approvals(
    gateway: number,
    key: string,
    args: string[],
  ): Promise<{ code: number; out: unknown; stderr: string }> {
    const result = await runCli([
      'approvals',
      ...args,
      '--json',
      '--url',
      cluster.gateways[gateway]!.httpUrl,
      '--api-key',
      key,
    ]);
    return { code: result.code, out: result.code === 0 ? JSON.parse(result.stdout) : undefined, stderr: result.stderr };
  }

  const open = (gateway: number, key: string) =>
    TestSocket.open(cluster.gateways[gateway]!.url, { headers: { 'x-api-key': key } });

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      workers: 1,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_API_KEY_SECRET: SECRET },
    });
    const http = cluster.gateways[0]!.httpUrl;
    keys = {
      caller: await createApiKey(http, ADMIN, { name: 'shop', role: 'caller' }),
      agent: await createApiKey(http, ADMIN, { name: 'bank', role: 'agent' }),
      approver1: await createApiKey(http, ADMIN, { name: 'alice', role: 'approver' }),
      approver2: await createApiKey(http, ADMIN, { name: 'bob', role: 'approver' }),
      operator: await createApiKey(http, ADMIN, { name: 'ops', role: 'operator' }),
    };
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('holds a sync call on one replica until an approver on the other approves it; the agent gets it unchanged; every step is audited', async () => {
    await apply(LARGE_TRANSFERS_NEED_APPROVAL);
    const agent = await startAgent(cluster.gateways[1]!.url, {
      name: 'payments',
      headers: { 'x-api-key': keys.agent },
    });
    const watcher = await open(1, keys.approver1);
    const caller = await open(0, keys.caller);
    await watcher.request({ action: 'ping', id: 0 });

    const small = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'payments',
      task: 'transfer',
      data: { amount: 10 },
    });
    expect(small.ok).toBe(true);
    const data = { amount: 5000, to: 'DE02 1203 0000 0000 2020 51' };
    caller.send({ action: 'coordinator', id: 2, agent: 'payments', task: 'transfer', data, timeoutMs: 30_000 });
    const required = await caller.nextEvent('approval.required', 10_000);
    expect(required).toMatchObject({
      id: 2,
      validator: 'rule:large-transfers',
      reason: 'transfers over 1000 need a second pair of eyes',
      required: { approvers: 1 },
    });
    const approvalId = required.approvalId as string;
    // Operators on the other replica are told, and see it in the list.
    const notice = await watcher.nextFrame(
      (f) => f.event === 'approval.requested' && f.approvalId === approvalId,
      10_000,
      'approval.requested',
    );
    expect(notice).toMatchObject({
      status: 'pending',
      agent: 'payments',
      task: 'transfer',
      data,
      requestedBy: expect.stringMatching(/^apikey:/),
    });
    const listed = await approvals(1, keys.approver1, ['list']);
    expect(listed.code).toBe(0);
    expect(listed.out).toContainEqual(expect.objectContaining({ approvalId, status: 'pending', mode: 'sync' }));
    // Nothing reached the agent while it waits (only the small transfer).
    expect(agent.received).toHaveLength(1);
    // A caller may not decide (no approval:decide).
    const self = await caller.request({ action: 'approval.decide', id: 3, approvalId, decision: 'approve' });
    expect(self).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });

    const decided = await approvals(1, keys.approver1, ['approve', approvalId, '--reason', 'checked with finance']);
    expect(decided.code).toBe(0);
    expect(decided.out).toMatchObject({ approvalId, approvals: 1 });
    const reply = await caller.nextResponse((r) => r.id === 2, 10_000);
    expect(reply).toMatchObject({ ok: true, result: { status: 'completed', output: { echo: data } } });
    expect(agent.received).toHaveLength(2);
    expect(agent.received[1]!.data).toEqual(data);
    const updated = await watcher.nextFrame(
      (f) => f.event === 'approval.updated' && f.approvalId === approvalId && f.status === 'consumed',
      10_000,
      'approval.updated (consumed)',
    );
    expect(updated).toMatchObject({
      decisions: [expect.objectContaining({ decision: 'approve', reason: 'checked with finance' })],
    });

    const audit = (await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'default')).filter(
      (e) => (e.details as { approvalId?: string } | undefined)?.approvalId === approvalId,
    );
    expect(audit.map((e) => e.type)).toEqual(
      expect.arrayContaining(['approval.requested', 'approval.decision', 'approval.approved', 'approval.consumed']),
    );
    await Promise.all([caller.close(), watcher.close(), agent.close()]);
  });

  it('needs two approvers with the role for a parked async task; others are refused; it then runs once', async () => {
    await apply(`
governance:
  rules:
    - name: wire-abroad
      when: { agent: wires, task: send }
      verdict: require-approval
      approval: { approvers: 2, role: approver, expiresMs: 600000 }
`);
    const agent = await startAgent(cluster.gateways[0]!.url, { name: 'wires', headers: { 'x-api-key': keys.agent } });
    const caller = await open(1, keys.caller);
    const operator = await open(0, keys.operator);
    const first = await open(0, keys.approver1);
    const second = await open(1, keys.approver2);
    const reply = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'wires',
      task: 'send',
      mode: 'async',
      data: { iban: 'x', amount: 7 },
    });
    expect(reply.ok).toBe(true);
    const taskId = (reply.result as { taskId: string }).taskId;
    const parked = await caller.nextFrame(
      (f) => f.event === 'task.status' && f.taskId === taskId && f.status === 'input-required',
      15_000,
      'input-required',
    );
    const approvalId = (parked.question as { approval: { approvalId: string } }).approval.approvalId;
    expect(parked.question).toMatchObject({
      approval: { validator: 'rule:wire-abroad', required: { approvers: 2, role: 'approver' } },
    });
    const record = await caller.request({ action: 'task.get', id: 2, taskId });
    expect(record.result).toMatchObject({ status: 'input-required', approvalId, attempts: 0 });

    // An operator may decide approvals in general, but this one needs the approver role.
    const wrongRole = await operator.request({ action: 'approval.decide', id: 3, approvalId, decision: 'approve' });
    expect(wrongRole).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN', message: expect.stringContaining("role 'approver'") },
    });
    // An answer is not an approval.
    const answered = await operator.request({ action: 'task.respond', id: 4, taskId, output: 'go' });
    expect(answered).toMatchObject({ ok: false, error: { code: 'CONFLICT', details: { approvalId } } });

    const one = await first.request({
      action: 'approval.decide',
      id: 5,
      approvalId,
      decision: 'approve',
      reason: 'looks fine',
    });
    expect(one).toMatchObject({ ok: true, result: { status: 'pending', approvals: 1, required: { approvers: 2 } } });
    const again = await first.request({ action: 'approval.decide', id: 6, approvalId, decision: 'approve' });
    expect(again).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
    // Half a quorum runs nothing: for a second (time has to pass), nothing reaches the agent.
    await new Promise((r) => setTimeout(r, 1000));
    expect(agent.received).toHaveLength(0);
    expect((await caller.request({ action: 'task.get', id: 7, taskId })).result).toMatchObject({
      status: 'input-required',
    });

    const two = await second.request({ action: 'approval.decide', id: 8, approvalId, decision: 'approve' });
    expect(two).toMatchObject({ ok: true, result: { status: 'approved', approvals: 2 } });
    const end = await taskEnd(caller, taskId, 20_000);
    expect(end).toMatchObject({ status: 'completed', output: { echo: { iban: 'x', amount: 7 } } });
    expect(agent.received).toHaveLength(1);
    expect(agent.received[0]).toMatchObject({ attempt: 1 });
    const after = await first.request({ action: 'approval.get', id: 9, approvalId });
    expect(after.result).toMatchObject({ status: 'consumed', approvals: 2 });
    await Promise.all([caller, operator, first, second, agent].map((s) => s.close()));
  });

  it('holds an agent output that needs approval and delivers it once approved (async)', async () => {
    await apply(`
governance:
  rules:
    - name: release-reports
      when: { direction: response, agent: reports }
      verdict: require-approval
`);
    const agent = await startAgent(cluster.gateways[1]!.url, {
      name: 'reports',
      headers: { 'x-api-key': keys.agent },
      answer: (t) => ({ action: 'task.result', taskId: t.taskId, output: { report: 'Q3 numbers' } }),
    });
    const caller = await open(0, keys.caller);
    const reply = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'reports',
      task: 'draft',
      mode: 'async',
    });
    const taskId = (reply.result as { taskId: string }).taskId;
    const parked = await caller.nextFrame(
      (f) => f.taskId === taskId && f.status === 'input-required',
      15_000,
      'input-required',
    );
    const approvalId = (parked.question as { approval: { approvalId: string; direction: string } }).approval.approvalId;
    const shown = await approvals(0, keys.approver2, ['show', approvalId]);
    expect(shown.out).toMatchObject({ direction: 'response', data: { report: 'Q3 numbers' }, status: 'pending' });
    expect((await approvals(1, keys.approver2, ['approve', approvalId])).code).toBe(0);
    expect(await taskEnd(caller, taskId, 20_000)).toMatchObject({
      status: 'completed',
      output: { report: 'Q3 numbers' },
    });
    expect(agent.received).toHaveLength(1);
    await Promise.all([caller.close(), agent.close()]);
  });

  it('refuses what expires undecided, sync and async, and what an approver rejects', async () => {
    await apply(`
governance:
  approvals: { expiresMs: 1500 }
  rules:
    - name: deletes
      when: { agent: records, task: delete }
      verdict: require-approval
    - name: purges
      when: { agent: records, task: purge }
      verdict: require-approval
      approval: { expiresMs: 600000 }
`);
    const agent = await startAgent(cluster.gateways[1]!.url, { name: 'records', headers: { 'x-api-key': keys.agent } });
    const caller = await open(0, keys.caller);
    // Sync: the approval expires long before the call's deadline; the call ends then, refused.
    caller.send({ action: 'coordinator', id: 1, agent: 'records', task: 'delete', data: { id: 1 }, timeoutMs: 30_000 });
    const required = await caller.nextEvent('approval.required', 10_000);
    const expired = await caller.nextResponse((r) => r.id === 1, 10_000);
    expect(expired).toMatchObject({
      ok: false,
      error: {
        code: 'POLICY_DENIED',
        message: expect.stringContaining('expired'),
        details: { validator: 'rule:deletes', approvalId: required.approvalId, approval: 'expired' },
      },
    });
    const late = await approvals(1, keys.approver1, ['approve', required.approvalId as string]);
    expect(late.code).not.toBe(0);
    expect(late.stderr).toMatch(/no longer pending|expired/);
    // Async: the parked task wakes at the expiry and ends rejected.
    const submitted = await caller.request({
      action: 'coordinator',
      id: 2,
      agent: 'records',
      task: 'delete',
      mode: 'async',
      data: { id: 2 },
    });
    const taskId = (submitted.result as { taskId: string }).taskId;
    const statuses = await taskStatuses(caller, taskId, 20_000);
    expect(statuses.map((s) => s.status).slice(-2)).toEqual(['input-required', 'rejected']);
    expect(statuses.at(-1)).toMatchObject({ error: { code: 'POLICY_DENIED', details: { approval: 'expired' } } });
    // Rejected: the caller hears who rejected it, and why.
    // (A rule of its own with a long expiry: the rejection must not race the 1.5 s one.)
    caller.send({ action: 'coordinator', id: 3, agent: 'records', task: 'purge', data: { id: 3 }, timeoutMs: 30_000 });
    const third = await caller.nextEvent('approval.required', 10_000);
    const rejected = await approvals(1, keys.approver2, [
      'reject',
      third.approvalId as string,
      '--reason',
      'not during the audit',
    ]);
    expect(rejected.out).toMatchObject({ status: 'rejected' });
    const refused = await caller.nextResponse((r) => r.id === 3, 10_000);
    expect(refused).toMatchObject({
      ok: false,
      error: {
        code: 'POLICY_DENIED',
        message: expect.stringContaining('not during the audit'),
        details: { approval: 'rejected' },
      },
    });
    expect(agent.received).toHaveLength(0);
    const audit = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'default');
    expect(
      audit.filter((e) => e.type === 'approval.expired').map((e) => (e.details as { approvalId: string }).approvalId),
    ).toContain(required.approvalId);
    expect(
      audit.some(
        (e) => e.type === 'approval.rejected' && (e.details as { approvalId: string }).approvalId === third.approvalId,
      ),
    ).toBe(true);
    await Promise.all([caller.close(), agent.close()]);
  });

  it('lets an approved message through once, unchanged: a changed payload or a second use is refused', async () => {
    await apply(`
governance:
  rules:
    - name: refunds
      when: { agent: refunds }
      verdict: require-approval
`);
    const agent = await startAgent(cluster.gateways[0]!.url, { name: 'refunds', headers: { 'x-api-key': keys.agent } });
    const caller = await open(1, keys.caller);
    const data = { order: 'A-17', amount: 40 };
    // The caller's deadline is shorter than the approver's reaction: TIMEOUT names the approval.
    const timedOut = await caller.request(
      { action: 'coordinator', id: 1, agent: 'refunds', task: 'refund', data, timeoutMs: 1000 },
      10_000,
    );
    expect(timedOut).toMatchObject({
      ok: false,
      error: { code: 'TIMEOUT', details: { approvalId: expect.any(String) } },
    });
    const approvalId = (timedOut.error as { details: { approvalId: string } }).details.approvalId;
    expect((await approvals(0, keys.approver1, ['approve', approvalId])).out).toMatchObject({ status: 'approved' });

    const changed = await caller.request({
      action: 'coordinator',
      id: 2,
      agent: 'refunds',
      task: 'refund',
      data: { ...data, amount: 4000 },
      approvalId,
    });
    expect(changed).toMatchObject({
      ok: false,
      error: { code: 'POLICY_DENIED', details: { approvalId, approval: 'mismatch' } },
    });
    expect(agent.received).toHaveLength(0);
    const same = await caller.request({
      action: 'coordinator',
      id: 3,
      agent: 'refunds',
      task: 'refund',
      data,
      approvalId,
    });
    expect(same).toMatchObject({ ok: true, result: { output: { echo: data } } });
    const twice = await caller.request({
      action: 'coordinator',
      id: 4,
      agent: 'refunds',
      task: 'refund',
      data,
      approvalId,
    });
    expect(twice).toMatchObject({
      ok: false,
      error: {
        code: 'POLICY_DENIED',
        message: expect.stringContaining('already been used'),
        details: { approval: 'consumed' },
      },
    });
    expect(agent.received).toHaveLength(1);
    // Another principal cannot use it either (the caller is part of what the approval binds).
    const other = await open(0, keys.operator);
    const foreign = await other.request({ action: 'approval.get', id: 5, approvalId });
    expect(foreign.ok).toBe(true);
    await waitFor(
      async () => {
        const audit = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'default');
        return audit.some(
          (e) =>
            e.type === 'approval.use-refused' &&
            (e.details as { approvalId: string }).approvalId === approvalId &&
            e.outcome === 'mismatch',
        );
      },
      { what: 'the refused use in the audit trail', timeoutMs: 10_000 },
    );
    await Promise.all([caller.close(), other.close(), agent.close()]);
  });

  it('answers bad approval requests with clear errors', async () => {
    const approver = await open(0, keys.approver1);
    const badId = await approver.request({
      action: 'approval.decide',
      id: 1,
      approvalId: 'pending',
      decision: 'approve',
    });
    expect(badId).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', details: [expect.objectContaining({ field: 'approvalId' })] },
    });
    const badDecision = await approver.request({
      action: 'approval.decide',
      id: 2,
      approvalId: '00000000-0000-4000-8000-000000000000',
      decision: 'maybe',
    });
    expect(badDecision).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    const missing = await approver.request({
      action: 'approval.decide',
      id: 3,
      approvalId: '00000000-0000-4000-8000-000000000000',
      decision: 'approve',
    });
    expect(missing).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    const list = await approvals(0, keys.approver1, ['list', '--status', 'bogus']);
    expect(list.code).not.toBe(0);
    expect(list.stderr).toMatch(/status/);
    await approver.close();
  });
});

/**
 * A replica stopped (SIGTERM) while a sync call on it waits for an approval: at the end of its drain
 * window it refuses the call (UNAVAILABLE, not dispatched, naming the approval) before it closes the
 * connection, and exits without waiting for the call's deadline. The SDK sends the call again through
 * the load balancer with that approvalId, so it waits on the other replica for the same approval, and
 * runs once when an approver decides.
 */
describe('a call waiting for an approval on a replica that drains', () => {
  let cluster: Cluster;
  let nginx: NginxProcess;
  let keys: { caller: string; agent: string; approver: string };

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_API_KEY_SECRET: SECRET, OPENCLAW_DRAIN_MS: '1500' },
    });
    nginx = await NginxProcess.start(cluster.gateways.map((g) => g.port));
    const http = cluster.gateways[0]!.httpUrl;
    keys = {
      caller: await createApiKey(http, ADMIN, { name: 'shop', role: 'caller' }),
      agent: await createApiKey(http, ADMIN, { name: 'bank', role: 'agent' }),
      approver: await createApiKey(http, ADMIN, { name: 'alice', role: 'approver' }),
    };
    await applyPolicy(cluster, ADMIN, LARGE_TRANSFERS_NEED_APPROVAL);
  });
  afterAll(async () => {
    await nginx?.stop();
    await cluster?.stop();
  });

  it('is refused before the close, sent again elsewhere with its approvalId, and runs once when approved', async () => {
    const client = await connect({
      url: nginx.url,
      apiKey: keys.caller,
      reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
    });
    try {
      const draining = cluster.gateways.find((g) => g.replicaId === client.session?.replica)!;
      const staying = cluster.gateways.find((g) => g !== draining)!;
      const agent = await startAgent(staying.url, { name: 'payments', headers: { 'x-api-key': keys.agent } });
      const retries: GatewayError[] = [];
      client.on('call.retry', ({ error }) => retries.push(error));
      const data = { amount: 5000 };
      const output = client.call('payments', 'transfer', data, { timeoutMs: 60_000 });

      const pending = async () => {
        const listed = await fetch(`${staying.httpUrl}/v1/approvals?status=pending`, {
          headers: { 'x-api-key': keys.approver },
        });
        return (await listed.json()) as { approvalId: string }[];
      };
      await waitFor(async () => (await pending()).length === 1, { what: 'the approval request' });
      const [{ approvalId }] = await pending();

      const stoppedAt = Date.now();
      const exit = await draining.stop('SIGTERM', 15_000);
      // It did not wait for the call's deadline (60 s).
      expect(exit).toEqual({ code: 0, signal: null });
      expect(Date.now() - stoppedAt).toBeLessThan(15_000);
      await waitFor(() => retries.length >= 1, { what: 'the call to be sent again' });
      expect(retries[0]).toMatchObject({
        code: 'UNAVAILABLE',
        retryable: true,
        dispatched: false,
        details: { approvalId },
      });
      // Sent again before the 1001 came, it was refused by the leaving connection: not dispatched either.
      expect(retries.filter((e) => !(e.code === 'UNAVAILABLE' && e.dispatched === false))).toEqual([]);
      // Sent again on the other replica, it waits for the same approval: no second request.
      await waitFor(() => client.session?.replica === staying.replicaId, { what: 'the reconnection' });
      await waitFor(
        async () => {
          const metrics = await fetch(`${staying.httpUrl}/v1/metrics`, { headers: { 'x-api-key': ADMIN } });
          return ((await metrics.json()) as { approvals: { waiting: number } }).approvals.waiting === 1;
        },
        { what: 'the call sent again to wait for an approval on the other replica' },
      );
      expect((await pending()).map((a) => a.approvalId)).toEqual([approvalId]);
      expect(agent.received).toEqual([]);

      const decided = await runCli([
        'approvals',
        'approve',
        approvalId,
        '--json',
        '--url',
        staying.httpUrl,
        '--api-key',
        keys.approver,
      ]);
      expect(decided.code).toBe(0);
      expect(await output).toEqual({ echo: data, by: 'payments' });
      expect(agent.received).toHaveLength(1);
      await agent.close();
    } finally {
      await client.close();
    }
  });
});
