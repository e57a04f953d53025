import { applyPolicy, auditTail } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import type { GatewayProcess } from '../helpers/gateway-process';
import { NginxProcess } from '../helpers/nginx';
import { freePort } from '../helpers/ports';
import { submitAsync, taskEnd } from '../helpers/tasks';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const ADMIN = 'admin-key-for-region-tests-000001';
const SECRET = 'region-link-secret-for-the-tests-0000001';
const headers = { 'x-api-key': ADMIN };

/**
 * Two regions on this machine, each a cluster of its own: its own Redis, two replicas behind its own
 * nginx, linked to the other by the regions' shared secret.
 */
describe('two linked regions', () => {
  let east: Cluster;
  let west: Cluster;
  let eastLb: NginxProcess;
  let westLb: NginxProcess;
  const regionEnv = (name: string, peer: string, port: number) => ({
    OPENCLAW_REGION: name,
    OPENCLAW_REGION_PEERS: `${peer}=http://127.0.0.1:${port}`,
    OPENCLAW_REGION_SECRET: SECRET,
  });

  beforeAll(async () => {
    const eastPort = await freePort();
    west = await startCluster({ auth: 'apikey', apiKeys: [ADMIN], env: regionEnv('west', 'east', eastPort) });
    westLb = await NginxProcess.start(west.gateways.map((g) => g.port));
    east = await startCluster({
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: regionEnv('east', 'west', westLb.port),
      workers: 1,
      workerEnv: regionEnv('east', 'west', westLb.port),
    });
    eastLb = await NginxProcess.start(
      east.gateways.map((g) => g.port),
      eastPort,
    );
  });
  afterAll(async () => {
    await Promise.allSettled([eastLb?.stop(), westLb?.stop()]);
    await Promise.allSettled([east?.stop(), west?.stop()]);
  });

  /** Calls until the call no longer fails with AGENT_NOT_FOUND (the directory is read every 2 s). */
  async function callWhenListed(caller: TestSocket, params: Record<string, unknown>) {
    let n = 0;
    let reply: Awaited<ReturnType<TestSocket['request']>> | undefined;
    await waitFor(
      async () => {
        reply = await caller.request({ action: 'coordinator', id: `w${n++}`, ...params }, 15_000);
        return (reply.error as { code?: string } | undefined)?.code !== 'AGENT_NOT_FOUND';
      },
      { what: `agent ${String(params.agent)} in the other region's directory`, timeoutMs: 10_000, intervalMs: 200 },
    );
    return reply!;
  }

  it('forwards a call for an agent that only the other region has, both ways, audited on both sides', async () => {
    const [, westB] = west.gateways as [GatewayProcess, GatewayProcess];
    const [eastA, eastB] = east.gateways as [GatewayProcess, GatewayProcess];
    const translator = await startAgent(westB.url, {
      name: 'translator',
      headers,
      answer: (t) => ({ action: 'task.result', taskId: t.taskId, output: { text: `hola ${String(t.data)}` } }),
    });
    const caller = await TestSocket.open(eastA.url, { headers });
    const reply = await callWhenListed(caller, { agent: 'translator', task: 'translate', data: 'mundo' });
    expect(reply).toMatchObject({ ok: true, result: { status: 'completed', output: { text: 'hola mundo' } } });
    const taskId = (reply.result as { taskId: string }).taskId;
    // The agent in the west was told who called, under the call's own id.
    expect(translator.received.at(-1)).toMatchObject({ taskId, task: 'translate', data: 'mundo' });
    expect(translator.received.at(-1)?.from).toMatchObject({ principal: expect.any(String) });

    // Timed as a call routed to another region.
    expect(await (await fetch(`${eastA.httpUrl}/metrics`)).text()).toMatch(
      /openclaw_routing_duration_seconds_count\{route="region"\} [1-9]/,
    );
    // Audited where it was made (forwarded to west) and where it ran (from east).
    const eastAudit = await auditTail(eastA.httpUrl, ADMIN, 'default');
    expect(eastAudit).toContainEqual(
      expect.objectContaining({
        type: 'task.forwarded',
        details: expect.objectContaining({ agent: 'translator', region: 'west' }),
      }),
    );
    expect(eastAudit).toContainEqual(
      expect.objectContaining({ type: 'task.routed', outcome: 'ok', details: expect.objectContaining({ taskId }) }),
    );
    const westAudit = await auditTail(westB.httpUrl, ADMIN, 'default');
    expect(westAudit).toContainEqual(
      expect.objectContaining({
        type: 'task.routed',
        outcome: 'ok',
        details: expect.objectContaining({ taskId, fromRegion: 'east', agent: 'translator' }),
      }),
    );

    // An async task in the east for the same agent: the east's worker sends it to the west too.
    const asyncId = await submitAsync(caller, { agent: 'translator', task: 'translate', data: 'async' });
    expect(await taskEnd(caller, asyncId)).toMatchObject({ status: 'completed', output: { text: 'hola async' } });

    // And the other way: an agent in the east, called from the west.
    const summarizer = await startAgent(eastB.url, {
      name: 'summarizer',
      headers,
      answer: (t) => ({ action: 'task.result', taskId: t.taskId, output: 'short' }),
    });
    const westCaller = await TestSocket.open(westB.url, { headers });
    expect(await callWhenListed(westCaller, { agent: 'summarizer', task: 's' })).toMatchObject({
      ok: true,
      result: { output: 'short' },
    });
    await Promise.all([caller.close(), westCaller.close(), translator.close(), summarizer.close()]);
  }, 60_000);

  it('applies the receiving region’s governance and the caller’s deadline, and cancels the agent when the caller stops', async () => {
    const [westA] = west.gateways as [GatewayProcess, GatewayProcess];
    const [eastA] = east.gateways as [GatewayProcess, GatewayProcess];
    await applyPolicy(
      west,
      ADMIN,
      `
governance:
  rules:
    - name: no-exports-abroad
      when: { agent: ledger, task: export }
      verdict: deny
      reason: exports stay in the west
`,
    );
    const ledger = await startAgent(westA.url, { name: 'ledger', headers, answer: 'manual' });
    const caller = await TestSocket.open(eastA.url, { headers });
    // Denied by the west's policy (the east has no rule): POLICY_DENIED as the west answered it.
    const denied = await callWhenListed(caller, { agent: 'ledger', task: 'export' });
    expect(denied).toMatchObject({
      ok: false,
      error: { code: 'POLICY_DENIED', details: { validator: 'rule:no-exports-abroad' } },
    });
    expect(ledger.received).toHaveLength(0);
    const westAudit = await auditTail(westA.httpUrl, ADMIN, 'default');
    expect(westAudit).toContainEqual(
      expect.objectContaining({
        type: 'task.routed',
        outcome: 'POLICY_DENIED',
        details: expect.objectContaining({ fromRegion: 'east' }),
      }),
    );

    // The caller's deadline holds across the link; the agent is told to stop when it passes.
    const started = Date.now();
    const late = await caller.request({
      action: 'coordinator',
      id: 'late',
      agent: 'ledger',
      task: 'read',
      timeoutMs: 1_500,
    });
    expect(late).toMatchObject({ ok: false, error: { code: 'TIMEOUT' } });
    expect(Date.now() - started).toBeLessThan(5_000);
    const task = await ledger.socket.nextEvent('task');
    expect(
      await ledger.socket.nextFrame((f) => f.event === 'task.cancel' && f.taskId === task.taskId, 10_000),
    ).toBeDefined();

    // A cancel from the caller reaches the agent in the other region too.
    caller.send({ action: 'coordinator', id: 'long', agent: 'ledger', task: 'read', timeoutMs: 30_000 });
    const held = await ledger.socket.nextEvent('task', 10_000);
    expect(await caller.request({ action: 'task.cancel', id: 'c', requestId: 'long' })).toMatchObject({ ok: true });
    expect(await caller.nextResponse((r) => r.id === 'long')).toMatchObject({ ok: false, error: { code: 'CANCELED' } });
    expect(
      await ledger.socket.nextFrame((f) => f.event === 'task.cancel' && f.taskId === held.taskId, 10_000),
    ).toBeDefined();
    await applyPolicy(west, ADMIN, 'governance: {}\n');
    await Promise.all([caller.close(), ledger.close()]);
  }, 60_000);

  it('refuses the link without the secret, never forwards a forwarded call again, and forgets an agent that left', async () => {
    const [westA] = west.gateways as [GatewayProcess, GatewayProcess];
    const [eastA] = east.gateways as [GatewayProcess, GatewayProcess];
    const call = {
      taskId: '0190a000-0000-7000-8000-000000000001',
      region: 'east',
      tenant: 'default',
      principal: 'someone',
      agent: 'echo',
      task: 't',
      data: null,
      timeoutMs: 2_000,
    };
    const post = (url: string, secret: string, body: unknown) =>
      fetch(`${url}/v1/regions/calls`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const wrong = await post(westA.httpUrl, 'not-the-secret-of-these-regions-00000', call);
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    expect((await fetch(`${westA.httpUrl}/v1/regions/agents`)).status).toBe(401);
    // A body that is not a call: 400 naming the field.
    const bad = await post(westA.httpUrl, SECRET, { ...call, timeoutMs: -1 });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('timeoutMs');
    // A region this one is not linked with.
    const stranger = await post(westA.httpUrl, SECRET, { ...call, region: 'north' });
    expect(stranger.status).toBe(403);

    // An agent only the west has, forwarded to the east as if from the west: the east runs it
    // itself or not at all (it does not send it back).
    const echo = await startAgent(westA.url, { name: 'echo', headers });
    const caller = await TestSocket.open(eastA.url, { headers });
    expect(await callWhenListed(caller, { agent: 'echo', task: 't' })).toMatchObject({ ok: true });
    const looped = await post(eastA.httpUrl, SECRET, { ...call, region: 'west' });
    expect(looped.status).toBe(200);
    expect(await looped.json()).toMatchObject({ ok: false, error: { code: 'AGENT_NOT_FOUND' } });

    // The agent leaves the west: the east's directory drops it within a round or two.
    const directory = east.redis.client();
    const listed = () => directory.sismember(`${east.keyPrefix}:{regions}:agents:west`, 'default/echo');
    expect(await listed()).toBe(1);
    await echo.close();
    await waitFor(async () => (await listed()) === 0, { what: 'the agent gone from the directory', timeoutMs: 10_000 });
    directory.disconnect();
    await caller.close();
  }, 60_000);
});
