import { connect, type GatewayClient } from '@openclaw/sdk';
import { createApiKey } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { NginxProcess } from '../helpers/nginx';
import { waitFor } from '../helpers/wait';
import { type Frame, TestSocket } from '../helpers/ws-client';

const ADMIN = 'admin-key-for-load-balancer-tests-01';

/**
 * Three real replicas behind a real nginx running deploy/nginx/nginx.conf, the file docker-compose
 * uses: WebSockets and HTTP go through it, spread over the replicas, and a replica that drains or
 * dies costs new connections nothing.
 */
describe('behind nginx (deploy/nginx/nginx.conf)', () => {
  let cluster: Cluster;
  let nginx: NginxProcess;
  let operatorKey: string;
  /** SDK clients a test opened: closed after the tests even if one fails, or they would reconnect forever. */
  const clients: GatewayClient[] = [];

  const open = (headers: Record<string, string> = {}) =>
    TestSocket.open(nginx.url, { headers: { 'x-api-key': ADMIN, ...headers } });
  const replicaOf = async (socket: TestSocket) =>
    ((await socket.request({ action: 'hello', id: 'h' })).result as { replica: string }).replica;

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 4,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: {
        OPENCLAW_API_KEY_SECRET: 'l'.repeat(40),
        OPENCLAW_DRAIN_MS: '4000',
        // Slow enough to see the batches with a few dozen connections.
        OPENCLAW_DRAIN_CLOSE_RATE: '20',
        OPENCLAW_TRUSTED_PROXIES: '127.0.0.1',
      },
    });
    nginx = await NginxProcess.start(cluster.gateways.map((g) => g.port));
    operatorKey = await createApiKey(nginx.httpUrl, ADMIN, { name: 'console', role: 'operator' });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await nginx?.stop();
    await cluster?.stop();
  });

  it('spreads WebSockets over the replicas, and calls cross them', async () => {
    const agents = await Promise.all(
      ['a1', 'a2', 'a3'].map((name) => startAgent(nginx.url, { name, headers: { 'x-api-key': ADMIN } })),
    );
    // least_conn: three long-lived connections, three replicas.
    const replicas = await Promise.all(agents.map((a) => replicaOf(a.socket)));
    expect(new Set(replicas).size).toBe(3);
    const caller = await open();
    for (const name of ['a1', 'a2', 'a3']) {
      const reply = await caller.request({ action: 'coordinator', id: name, agent: name, task: 't', data: { n: 1 } });
      expect(reply).toMatchObject({ ok: true, result: { output: { echo: { n: 1 }, by: name } } });
    }
    await Promise.all([caller.close(), ...agents.map((a) => a.close())]);
  });

  it('lets Mission Control in through the proxy: same origin, with the port, and the key in the query', async () => {
    const page = await fetch(`${nginx.httpUrl}/dashboard/`);
    expect(page.status).toBe(200);
    const origin = nginx.httpUrl;
    const socket = await TestSocket.open(`${nginx.url}/ws?access_token=${operatorKey}`, { origin });
    expect(await socket.request({ action: 'cluster.watch', id: 1 })).toMatchObject({ ok: true });
    const snapshot = await socket.nextEvent('cluster.snapshot', 10_000);
    expect((snapshot.replicas as unknown[]).length).toBe(4);
    await socket.close();
    // Another site's page is still refused.
    await expect(
      TestSocket.open(`${nginx.url}/ws?access_token=${operatorKey}`, { origin: 'http://evil.example' }),
    ).rejects.toThrow(/403/);
    // The query string (the key) is not in nginx's access log.
    expect(nginx.logs()).toContain('GET /ws HTTP/1.1');
    expect(nginx.logs()).not.toContain(operatorKey);
  });

  it('drains in batches: idle connections leave over time, SDK agents come back through nginx elsewhere', async () => {
    const leaving = cluster.gateways[3]!;
    // SDK agents through nginx: least_conn puts two on every replica.
    for (let i = 0; i < 8; i++) {
      const client = await connect({
        url: nginx.url,
        apiKey: ADMIN,
        reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
      });
      clients.push(client);
      const agent = client.agent(`worker-${i}`);
      agent.handle('work', async () => ({ by: i }));
      await agent.register();
    }
    const moved = clients
      .map((c, i) => ({ i, replica: c.session!.replica }))
      .filter((c) => c.replica === leaving.replicaId)
      .map((c) => c.i);
    expect(moved.length).toBeGreaterThan(0);
    // And thirty idle connections straight to the replica, to watch the batches.
    const idle = await Promise.all(
      Array.from({ length: 30 }, () => TestSocket.open(leaving.url, { headers: { 'x-api-key': ADMIN } })),
    );
    const closedAt: number[] = [];
    for (const s of idle) void s.closed.then((c) => closedAt.push(c.code === 1001 ? Date.now() : Number.NaN));
    expect(await leaving.stop('SIGTERM', 20_000)).toMatchObject({ code: 0 });
    expect(closedAt).toHaveLength(30);
    expect(closedAt.every((t) => !Number.isNaN(t))).toBe(true);
    // Not all at once: at 20 per second (the rate asked for), over thirty connections take more than a
    // second and a half, however slow this machine is (the allowance grows with the clock).
    const spread = Math.max(...closedAt) - Math.min(...closedAt);
    expect(spread).toBeGreaterThan(800);
    // The agents that were there reconnected through nginx, to other replicas, and registered again.
    const caller = await open();
    for (const i of moved) {
      await waitFor(
        async () => clients[i]!.session?.replica !== leaving.replicaId && clients[i]!.connectionState === 'connected',
        {
          what: `agent worker-${i} to reconnect`,
        },
      );
      const reply = await caller.request({ action: 'coordinator', id: `m${i}`, agent: `worker-${i}`, task: 'work' });
      expect(reply).toMatchObject({ ok: true, result: { output: { by: i } } });
    }
    await caller.close();
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  it('sends new connections elsewhere while a replica drains, and when one is killed', async () => {
    const [draining, killed] = [cluster.gateways[0]!, cluster.gateways[1]!];
    // A call in flight on the replica that will drain keeps it draining (up to OPENCLAW_DRAIN_MS).
    const agent = await startAgent(draining.url, { name: 'slow', answer: 'manual', headers: { 'x-api-key': ADMIN } });
    const caller = await TestSocket.open(draining.url, { headers: { 'x-api-key': ADMIN } });
    caller.send({ action: 'coordinator', id: 'held', agent: 'slow', task: 't', timeoutMs: 20_000 });
    const task = await agent.socket.nextEvent('task', 5_000);
    const stopped = draining.stop('SIGTERM', 20_000);
    await waitFor(async () => (await fetch(`${draining.httpUrl}/readyz`)).status === 503, { what: 'the drain' });
    // Meanwhile it refuses upgrades with 503, and nginx tries the next replica.
    const during: string[] = [];
    for (let i = 0; i < 9; i++) {
      const s = await open();
      during.push(await replicaOf(s));
      await s.close();
    }
    expect(during).not.toContain(draining.replicaId);
    expect(draining.isRunning).toBe(true);
    // The caller's connection, busy with its call, is told to leave: a new call is refused as never
    // dispatched (a client may send it elsewhere), while cancels are still handled.
    let n = 0;
    let refusal: Frame | undefined;
    await waitFor(
      async () => {
        const r = await caller.request({ action: 'coordinator', id: `new-${n++}`, agent: 'slow', task: 't' });
        if (r.ok) throw new Error('a leaving connection must not start a new call');
        refusal = r;
        return (r.error as { code?: string }).code === 'UNAVAILABLE';
      },
      { what: 'the busy connection to be told to leave', intervalMs: 20 },
    );
    expect(refusal?.error).toMatchObject({ code: 'UNAVAILABLE', retryable: true, dispatched: false });
    expect(await caller.request({ action: 'task.cancel', id: 'c', taskId: 'no-such-task' })).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
    // The call in flight finishes; then the replica closes its sockets with 1001 and exits.
    agent.socket.send({ action: 'task.result', taskId: task.taskId, output: 'done' });
    expect(await caller.nextResponse((f) => f.id === 'held', 5_000)).toMatchObject({
      ok: true,
      result: { output: 'done' },
    });
    expect((await caller.closed).code).toBe(1001);
    expect(await stopped).toMatchObject({ code: 0 });

    // A replica killed outright: its port refuses connections, and nginx moves on.
    await killed.kill();
    const after: string[] = [];
    for (let i = 0; i < 6; i++) {
      const s = await open();
      after.push(await replicaOf(s));
      await s.close();
    }
    expect(new Set(after)).toEqual(new Set([cluster.gateways[2]!.replicaId]));
  });
});
