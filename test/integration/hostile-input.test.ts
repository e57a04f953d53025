import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { waitFor, withTimeout } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

/** Frames a broken or hostile client may send: each gets the right error or close code, and everyone else is still served. */
describe('hostile input', () => {
  let cluster: Cluster;
  let url: string;

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 1,
      env: {
        OPENCLAW_MAX_FRAME_BYTES: String(64 * 1024),
        OPENCLAW_RATE_LIMIT: '20',
        OPENCLAW_RATE_BURST: '20',
        OPENCLAW_MAX_BUFFERED_BYTES: String(64 * 1024),
        OPENCLAW_HEARTBEAT_MS: '200',
      },
    });
    url = cluster.gateways[0]!.url;
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('answers frames that are not JSON objects with BAD_REQUEST and keeps the socket open', async () => {
    const s = await TestSocket.open(url);
    s.send('this is not json');
    expect(await s.nextResponse()).toMatchObject({
      id: null,
      ok: false,
      error: { code: 'BAD_REQUEST', details: [{ field: '' }] },
    });
    for (const frame of ['[1,2]', '42', 'null', '"text"']) {
      s.send(frame);
      expect(await s.nextResponse()).toMatchObject({
        id: null,
        ok: false,
        error: { code: 'BAD_REQUEST', message: 'a frame must be a JSON object' },
      });
    }
    s.sendBinary(Buffer.from(JSON.stringify({ action: 'ping', id: 1 })));
    expect(await s.nextResponse()).toMatchObject({ id: null, ok: false, error: { code: 'BAD_REQUEST' } });
    expect(await s.request({ action: 'ping', id: 'still-open' })).toMatchObject({ ok: true, result: { pong: true } });
    await s.close();
  });

  it('names the failing fields of a frame with wrong types', async () => {
    const s = await TestSocket.open(url);
    const r = await s.request({ action: 'coordinator', id: 7, agent: 5, task: [] });
    expect(r).toMatchObject({ id: 7, ok: false, error: { code: 'BAD_REQUEST', retryable: false } });
    const fields = ((r.error as { details: { field: string }[] }).details ?? []).map((d) => d.field).sort();
    expect(fields).toEqual(['agent', 'task']);
    expect(await s.request({ action: 'coordinator', id: 8, agent: 'x', task: 't', timeoutMs: -1 })).toMatchObject({
      error: { code: 'BAD_REQUEST', details: [{ field: 'timeoutMs' }] },
    });
    s.send({ action: 'ping', id: { nested: true } });
    expect(await s.nextResponse()).toMatchObject({
      id: null,
      error: { code: 'BAD_REQUEST', details: [{ field: 'id' }] },
    });
    expect(await s.request({ action: 42, id: 9 })).toMatchObject({
      id: 9,
      error: { code: 'BAD_REQUEST', details: [{ field: 'action' }] },
    });
    await s.close();
  });

  it('answers unknown actions with UNKNOWN_ACTION, including ones named like object internals', async () => {
    const s = await TestSocket.open(url);
    for (const [i, action] of ['launch.missiles', '__proto__', 'constructor', 'toString'].entries()) {
      expect(await s.request({ action, id: i })).toMatchObject({ id: i, ok: false, error: { code: 'UNKNOWN_ACTION' } });
    }
    await s.close();
  });

  it('refuses JSON nested deeper than the limit with BAD_REQUEST naming the field, and every call still ends', async () => {
    const deep = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;
    const agent = await TestSocket.open(url);
    expect(await agent.request({ action: 'register', id: 'r', name: 'deep-echo' })).toMatchObject({ ok: true });
    const caller = await TestSocket.open(url);
    caller.send(`{"action":"coordinator","id":"data","agent":"deep-echo","task":"t","data":${deep(20_000)}}`);
    expect(await caller.nextResponse()).toMatchObject({
      id: 'data',
      ok: false,
      error: {
        code: 'BAD_REQUEST',
        message: 'invalid coordinator: data is nested deeper than 64 levels',
        details: [{ field: 'data', message: 'nested deeper than 64 levels' }],
        dispatched: false,
      },
    });
    // The agent answers with an output nested 20 000 levels deep: it hears that its answer was
    // refused, and its caller is answered at once, not at the deadline.
    const answered = caller.request({
      action: 'coordinator',
      id: 'out',
      agent: 'deep-echo',
      task: 't',
      timeoutMs: 30_000,
    });
    const task = await agent.nextEvent('task');
    agent.send(`{"action":"task.result","id":"res","taskId":"${String(task.taskId)}","output":${deep(20_000)}}`);
    expect(await answered).toMatchObject({
      ok: false,
      error: { code: 'AGENT_ERROR', message: "the agent's answer: output is nested deeper than 64 levels" },
    });
    expect(await agent.nextResponse()).toMatchObject({ id: 'res', ok: false, error: { code: 'BAD_REQUEST' } });
    caller.send(`{"action":"register","id":"meta","name":"deep-meta","meta":{"a":${deep(100)}}}`);
    expect(await caller.nextResponse()).toMatchObject({
      id: 'meta',
      error: { code: 'BAD_REQUEST', details: [{ field: 'meta' }] },
    });
    const http = await fetch(`${cluster.gateways[0]!.httpUrl}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"agent":"deep-echo","task":"t","data":${deep(10_000)}}`,
    });
    expect(http.status).toBe(400);
    expect(await http.json()).toMatchObject({ error: { code: 'BAD_REQUEST', details: [{ field: 'data' }] } });
    expect(await caller.request({ action: 'ping', id: 'still' })).toMatchObject({ ok: true });
    await Promise.all([agent.close(), caller.close()]);
  });

  it('closes a socket that sends an oversize frame with 1009', async () => {
    const s = await TestSocket.open(url);
    s.send({ action: 'ping', id: 1, padding: 'x'.repeat(70 * 1024) });
    expect((await s.closed).code).toBe(1009);
  });

  it('rate-limits a flood from one socket while others are served', async () => {
    const flood = await TestSocket.open(url);
    const calm = await TestSocket.open(url);
    for (let i = 0; i < 100; i++) flood.send({ action: 'ping', id: i });
    const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => flood.nextResponse((r) => r.id === i)));
    const limited = responses.filter((r) => (r.error as { code?: string } | undefined)?.code === 'RATE_LIMITED');
    expect(limited.length).toBeGreaterThanOrEqual(70);
    expect(responses.filter((r) => r.ok).length).toBeGreaterThanOrEqual(20);
    expect(limited[0]).toMatchObject({ ok: false, error: { retryable: true, retryAfterMs: expect.any(Number) } });
    expect(await calm.request({ action: 'ping', id: 'calm' })).toMatchObject({ ok: true });
    await Promise.all([flood.close(), calm.close()]);
  });

  it('terminates a peer that stops answering pings', async () => {
    const silent = await TestSocket.open(url, { autoPong: false });
    expect((await silent.closed).code).toBe(1006);
  });
});

describe('a slow consumer', () => {
  let roomy: Cluster;
  beforeAll(async () => {
    roomy = await startCluster({ replicas: 1, env: { OPENCLAW_MAX_BUFFERED_BYTES: String(1024 * 1024) } });
  });
  afterAll(async () => {
    await roomy.stop();
  });

  it('closes a consumer that does not read its responses with 1013', async () => {
    const big = 'y'.repeat(900 * 1024);
    // Small tasks in, big answers out: only the caller's outbound buffer grows.
    const agent = await startAgent(roomy.gateways[0]!.url, {
      name: 'big-echo',
      concurrency: 64,
      answer: (t) => ({ action: 'task.result', taskId: t.taskId, output: t.data === 'ok' ? 'ok' : big }),
    });
    const slow = await TestSocket.open(roomy.gateways[0]!.url);
    const socket = (slow.raw as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    // 20 calls answered with ~900 KiB each, which the client never reads: far more than the kernel's socket buffers hold.
    for (let i = 0; i < 20; i++) slow.send({ action: 'coordinator', id: i, agent: 'big-echo', task: 't' });
    // Resume reading only once the replica has answered all 20 calls into the unread socket.
    await waitFor(
      async () => {
        const metrics = (await (await fetch(`${roomy.gateways[0]!.httpUrl}/v1/metrics`)).json()) as {
          requests: { coordinator?: { ok?: number } };
        };
        return (metrics.requests.coordinator?.ok ?? 0) >= 20;
      },
      { what: 'the replica to answer all 20 calls', timeoutMs: 30_000 },
    );
    socket.resume();
    expect((await withTimeout(slow.closed, 20_000, 'the slow consumer to be closed')).code).toBe(1013);
    const other = await TestSocket.open(roomy.gateways[0]!.url);
    expect(
      await other.request({ action: 'coordinator', id: 1, agent: 'big-echo', task: 't', data: 'ok' }),
    ).toMatchObject({ ok: true });
    await Promise.all([other.close(), agent.close()]);
  });
});

describe('authentication at upgrade', () => {
  const KEY = 'test-key-0123456789abcdef';
  let cluster: Cluster;
  let url: string;
  let httpUrl: string;

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 1,
      auth: 'apikey',
      apiKeys: [KEY],
      env: { OPENCLAW_ALLOWED_ORIGINS: 'https://app.example' },
    });
    url = cluster.gateways[0]!.url;
    httpUrl = cluster.gateways[0]!.httpUrl;
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('refuses a missing or wrong key with 401 and a JSON error, and opens no socket', async () => {
    await expect(TestSocket.open(url)).rejects.toMatchObject({
      status: 401,
      json: { error: { code: 'UNAUTHENTICATED' } },
    });
    await expect(TestSocket.open(url, { headers: { 'x-api-key': 'wrong-key-0123456789' } })).rejects.toMatchObject({
      status: 401,
    });
  });

  it('accepts the key in a header or the query, and names the principal without the key', async () => {
    for (const [target, headers] of [
      [url, { authorization: `Bearer ${KEY}` }],
      [url, { 'x-api-key': KEY }],
      [`${url}/?api_key=${KEY}`, {}],
    ] as const) {
      const s = await TestSocket.open(target, { headers });
      const hello = await s.request({ action: 'hello', id: 1, protocol: 1 });
      expect(hello).toMatchObject({
        ok: true,
        result: { protocol: 1, replica: 'A', principal: { tenant: 'default' } },
      });
      const principal = (hello.result as { principal: { id: string } }).principal.id;
      expect(principal).toMatch(/^apikey:[0-9a-f]{12}$/);
      expect(principal).not.toContain(KEY);
      await s.close();
    }
  });

  it('refuses a browser origin that is not allowed with 403', async () => {
    await expect(
      TestSocket.open(url, { origin: 'https://evil.example', headers: { 'x-api-key': KEY } }),
    ).rejects.toMatchObject({
      status: 403,
    });
    const ok = await TestSocket.open(url, { origin: 'https://app.example', headers: { 'x-api-key': KEY } });
    await ok.close();
  });

  it('keeps probes open and everything else behind the key on HTTP', async () => {
    expect((await fetch(`${httpUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${httpUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${httpUrl}/status`)).status).toBe(401);
    const status = await fetch(`${httpUrl}/status`, { headers: { 'x-api-key': KEY } });
    expect(await status.json()).toMatchObject({ replicaId: 'A', ready: true, connections: expect.any(Number) });
  });

  it('sends X-Content-Type-Options: nosniff on API answers, errors, /metrics, dashboard files and refused upgrades', async () => {
    const key = { 'x-api-key': KEY };
    const seen: [string, number, string | null][] = [];
    for (const [path, headers] of [
      ['/status', key],
      ['/v1/agents', key],
      ['/status', {}],
      ['/v1/no-such-endpoint', key],
      ['/healthz', {}],
      ['/metrics', {}],
      ['/', {}],
      ['/dashboard/', {}],
      ['/dashboard/main.js', {}],
      ['/dashboard/no-such-file.js', {}],
    ] as const) {
      const response = await fetch(`${httpUrl}${path}`, { headers, redirect: 'manual' });
      await response.arrayBuffer();
      seen.push([path, response.status, response.headers.get('x-content-type-options')]);
    }
    expect(seen).toEqual([
      ['/status', 200, 'nosniff'],
      ['/v1/agents', 200, 'nosniff'],
      ['/status', 401, 'nosniff'],
      ['/v1/no-such-endpoint', 404, 'nosniff'],
      ['/healthz', 200, 'nosniff'],
      ['/metrics', 200, 'nosniff'],
      ['/', 302, 'nosniff'],
      ['/dashboard/', 200, 'nosniff'],
      ['/dashboard/main.js', 200, 'nosniff'],
      ['/dashboard/no-such-file.js', 404, 'nosniff'],
    ]);
    await expect(TestSocket.open(url)).rejects.toMatchObject({
      status: 401,
      headers: { 'x-content-type-options': 'nosniff' },
    });
    await expect(
      TestSocket.open(url, { origin: 'https://evil.example', headers: { 'x-api-key': KEY } }),
    ).rejects.toMatchObject({ status: 403, headers: { 'x-content-type-options': 'nosniff' } });
  });
});
