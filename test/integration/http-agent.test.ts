import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli } from '../helpers/cli';
import { type Cluster, startCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

type Handler = (body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse) => void;

/** A real HTTP agent on a free port; its behaviour is chosen per path. */
async function startHttpAgent(
  routes: Record<string, Handler>,
): Promise<{ server: Server; url: (path: string) => string; seen: Record<string, unknown>[] }> {
  const seen: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => {
      text += c.toString();
    });
    req.on('end', () => {
      const body = JSON.parse(text) as Record<string, unknown>;
      seen.push({ ...body, contentType: req.headers['content-type'], method: req.method });
      const route = routes[req.url ?? '/'];
      if (route) route(body, req, res);
      else res.writeHead(404).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { server, url: (path) => `http://127.0.0.1:${port}${path}`, seen };
}

describe('HTTP agents', () => {
  let cluster: Cluster;
  let agent: Awaited<ReturnType<typeof startHttpAgent>>;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    agent = await startHttpAgent({
      '/ok': (body, _req, res) =>
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ got: body.data, task: body.task })),
      '/boom': (_b, _req, res) => res.writeHead(503).end('{"error":"overloaded"}'),
      '/teapot': (_b, _req, res) => res.writeHead(418).end('short and stout'),
      '/not-json': (_b, _req, res) => res.writeHead(200).end('<html>hello</html>'),
      '/slow': () => undefined, // never answers
    });
  });
  afterAll(async () => {
    agent.server.closeAllConnections();
    await new Promise((r) => agent.server.close(r));
    await cluster.stop();
  });

  it('answers a coordinator call after `openclaw agent register`, on any replica', async () => {
    const registered = await runCli([
      'agent',
      'register',
      '--name',
      'my-agent',
      '--url',
      agent.url('/ok'),
      '--gateway',
      cluster.gateways[1]!.httpUrl,
    ]);
    expect(registered).toMatchObject({ code: 0, stdout: `registered HTTP agent 'my-agent' -> ${agent.url('/ok')}\n` });
    const caller = await TestSocket.open(cluster.gateways[0]!.url);
    const response = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'my-agent',
      task: 'process-data',
      data: { x: 1 },
    });
    expect(response).toMatchObject({
      ok: true,
      result: { status: 'completed', output: { got: { x: 1 }, task: 'process-data' } },
    });
    const sent = agent.seen.at(-1)!;
    expect(sent).toMatchObject({
      method: 'POST',
      contentType: 'application/json',
      taskId: (response.result as { taskId: string }).taskId,
      task: 'process-data',
      data: { x: 1 },
      from: { principal: 'anonymous' },
      attempt: 1,
      deadline: expect.any(Number),
    });
    const list = await runCli(['agent', 'list', '--json', '--gateway', cluster.gateways[0]!.httpUrl]);
    expect(JSON.parse(list.stdout)).toEqual([
      { name: 'my-agent', kind: 'http', instances: 0, tasks: ['*'], url: agent.url('/ok') },
    ]);
    await caller.close();
  });

  it('caches the outputs an HTTP agent declares cacheable with `agent register --cache-tasks`, counted by `cache stats`', async () => {
    const gw = cluster.gateways[0]!.httpUrl;
    const halfFlags = await runCli([
      'agent',
      'register',
      '--name',
      'quoter',
      '--url',
      agent.url('/ok'),
      '--gateway',
      gw,
      '--cache-tasks',
      'quote',
    ]);
    expect(halfFlags.code).not.toBe(0);
    expect(halfFlags.stderr).toContain('--cache-tasks and --cache-ttl-ms go together');
    const badTtl = await runCli([
      ...['agent', 'register', '--name', 'quoter', '--url', agent.url('/ok'), '--gateway', gw],
      ...['--cache-tasks', 'quote', '--cache-ttl-ms', 'soon'],
    ]);
    expect(badTtl.stderr).toContain('--cache-ttl-ms: expected a positive integer, got "soon"');
    const registered = await runCli([
      ...['agent', 'register', '--name', 'quoter', '--url', agent.url('/ok'), '--gateway', gw],
      ...['--cache-tasks', 'quote, rate', '--cache-ttl-ms', '60000'],
    ]);
    expect(registered.code).toBe(0);
    const caller = await TestSocket.open(cluster.gateways[1]!.url);
    const seenBefore = agent.seen.length;
    const results = [];
    for (let i = 0; i < 3; i++) {
      results.push(
        await caller.request({ action: 'coordinator', id: i, agent: 'quoter', task: 'quote', data: { sku: 'z' } }),
      );
    }
    expect(results.map((r) => (r.result as { cached?: boolean }).cached)).toEqual([undefined, true, true]);
    expect(agent.seen.length - seenBefore).toBe(1);
    await caller.close();
    // The counters reach Redis every couple of seconds.
    let table = '';
    await waitFor(
      async () => {
        table = (await runCli(['cache', 'stats', '--url', gw])).stdout;
        return /quoter\s+quote,rate\s+60000\s+1\s+2\s+0\s+1\s+66\.7%/.test(table);
      },
      { what: `cache stats of quoter, got:\n${table}` },
    );
  });

  it.each([
    ['/boom', { code: 'AGENT_ERROR', retryable: true, details: { status: 503 } }],
    ['/teapot', { code: 'AGENT_ERROR', retryable: false, details: { status: 418, body: 'short and stout' } }],
    ['/not-json', { code: 'AGENT_ERROR', message: 'HTTP agent answered with a body that is not JSON' }],
  ])('maps the answer of %s to a protocol error', async (path, error) => {
    const name = `h${path.replace(/[^a-z]/g, '')}`;
    expect(
      (
        await runCli([
          'agent',
          'register',
          '--name',
          name,
          '--url',
          agent.url(path),
          '--gateway',
          cluster.gateways[0]!.httpUrl,
        ])
      ).code,
    ).toBe(0);
    const caller = await TestSocket.open(cluster.gateways[1]!.url);
    expect(await caller.request({ action: 'coordinator', id: 1, agent: name, task: 't' })).toMatchObject({
      ok: false,
      error,
    });
    await caller.close();
  });

  it('gives TIMEOUT when the HTTP agent does not answer before the deadline, and AGENT_UNAVAILABLE when it is down', async () => {
    const gw = cluster.gateways[0]!.httpUrl;
    expect(
      (await runCli(['agent', 'register', '--name', 'sloth', '--url', agent.url('/slow'), '--gateway', gw])).code,
    ).toBe(0);
    expect(
      (await runCli(['agent', 'register', '--name', 'gone', '--url', 'http://127.0.0.1:1/', '--gateway', gw])).code,
    ).toBe(0);
    const caller = await TestSocket.open(cluster.gateways[0]!.url);
    expect(
      await caller.request({ action: 'coordinator', id: 1, agent: 'sloth', task: 't', timeoutMs: 300 }),
    ).toMatchObject({
      error: { code: 'TIMEOUT' },
    });
    expect(await caller.request({ action: 'coordinator', id: 2, agent: 'gone', task: 't' })).toMatchObject({
      error: { code: 'AGENT_UNAVAILABLE', retryable: true },
    });
    await caller.close();
  });

  it('routes only the tasks an HTTP agent registered for', async () => {
    const gw = cluster.gateways[0]!.httpUrl;
    expect(
      (
        await runCli([
          'agent',
          'register',
          '--name',
          'narrow',
          '--url',
          agent.url('/ok'),
          '--tasks',
          'a,b',
          '--gateway',
          gw,
        ])
      ).code,
    ).toBe(0);
    const caller = await TestSocket.open(cluster.gateways[0]!.url);
    expect(await caller.request({ action: 'coordinator', id: 1, agent: 'narrow', task: 'b' })).toMatchObject({
      ok: true,
    });
    expect(await caller.request({ action: 'coordinator', id: 2, agent: 'narrow', task: 'zzz' })).toMatchObject({
      error: { code: 'AGENT_NOT_FOUND' },
    });
    await caller.close();
  });

  it('refuses API calls a web page from another origin could make', async () => {
    const gw = cluster.gateways[0]!.httpUrl;
    const body = JSON.stringify({ name: 'csrf', url: agent.url('/ok') });
    const plain = await fetch(`${gw}/v1/agents`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
    expect(plain.status).toBe(400);
    expect(await plain.json()).toMatchObject({
      error: { code: 'BAD_REQUEST', message: 'content-type must be application/json' },
    });
    const foreign = await fetch(`${gw}/v1/agents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body,
    });
    expect(foreign.status).toBe(403);
    expect((await fetch(`${gw}/v1/agents`, { headers: { origin: 'https://evil.example' } })).status).toBe(403);
    const list = (await (await fetch(`${gw}/v1/agents`)).json()) as { name: string }[];
    expect(list.map((a) => a.name)).not.toContain('csrf');
  });

  it('refuses bad registrations with a clear error and exit code 1', async () => {
    const gw = cluster.gateways[0]!.httpUrl;
    const badName = await runCli([
      'agent',
      'register',
      '--name',
      'Bad Name',
      '--url',
      agent.url('/ok'),
      '--gateway',
      gw,
    ]);
    expect(badName.code).toBe(1);
    expect(badName.stderr).toMatch(/name: agent names match/);
    const badUrl = await runCli([
      'agent',
      'register',
      '--name',
      'ftp-agent',
      '--url',
      'ftp://example.com/x',
      '--gateway',
      gw,
    ]);
    expect(badUrl.code).toBe(1);
    expect(badUrl.stderr).toMatch(/only http and https/);
    const missing = await runCli(['agent', 'register', '--name', 'x', '--gateway', gw]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--url/);
  });
});

describe('HTTP agents with authentication on', () => {
  const KEY = 'http-agent-key-0123456789';
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1, auth: 'apikey', apiKeys: [KEY] });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('refuses loopback and private agent URLs unless allowed (SSRF guard)', async () => {
    const gw = cluster.gateways[0]!.httpUrl;
    for (const url of [
      'http://127.0.0.1:8000/',
      'http://10.1.2.3/',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]:80/',
    ]) {
      const r = await runCli(['agent', 'register', '--name', 'ssrf', '--url', url, '--gateway', gw, '--api-key', KEY]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/may not target loopback, private or link-local/);
    }
    const noKey = await runCli(['agent', 'register', '--name', 'x', '--url', 'http://example.com/', '--gateway', gw]);
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/credentials required/);
  });

  it('refuses IPv6 spellings of private addresses: NAT64, 6to4, IPv4-compatible, IPv4-mapped, Teredo', async () => {
    const gw = cluster.gateways[0]!.httpUrl;
    for (const url of [
      'http://[64:ff9b::7f00:1]/',
      'http://[64:ff9b::a9fe:a9fe]/latest/meta-data',
      'http://[2002:a00:1::1]/',
      'http://[::127.0.0.1]/',
      'http://[::ffff:7f00:1]/',
      'http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/',
    ]) {
      const response = await fetch(`${gw}/v1/agents`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': KEY },
        body: JSON.stringify({ name: 'ssrf6', url }),
      });
      expect({ url, status: response.status, body: await response.json() }).toEqual({
        url,
        status: 403,
        body: {
          error: expect.objectContaining({
            code: 'FORBIDDEN',
            message: 'url: HTTP agents may not target loopback, private or link-local addresses here',
          }),
        },
      });
    }
    const list = (await (await fetch(`${gw}/v1/agents`, { headers: { 'x-api-key': KEY } })).json()) as {
      name: string;
    }[];
    expect(list.map((a) => a.name)).not.toContain('ssrf6');
  });
});
