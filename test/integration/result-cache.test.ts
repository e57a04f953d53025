import { applyPolicy, auditTail, createApiKey } from '../helpers/cli';
import { type Cluster, startAgent, startCluster, type TestAgent } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import { type Frame, TestSocket } from '../helpers/ws-client';

const ADMIN = 'bootstrap-admin-key-for-cache-0001';
const SECRET = 'a-server-secret-of-at-least-32-characters!';

/** The result cache on two real replicas: hits, misses, single flight, what is never cached, tenants. */
describe('result cache', () => {
  let cluster: Cluster;
  const keys: Record<string, string> = {};
  const open: { close(): Promise<void> }[] = [];
  let n = 0;
  const as = async (key: string, replica: number): Promise<TestSocket> => {
    const socket = await TestSocket.open(cluster.gateways[replica]!.url, { headers: { 'x-api-key': keys[key]! } });
    open.push(socket);
    return socket;
  };
  const call = (socket: TestSocket, params: Record<string, unknown>) =>
    socket.request({ action: 'coordinator', id: `c${n++}`, task: 'quote', ...params }, 15_000);
  /** A raw agent that registers with a cache policy and answers with a count of the tasks it got. */
  const cachingAgent = async (
    tenant: string,
    name: string,
    cache: unknown,
    answer?: (task: Frame, count: number) => Frame | undefined,
  ): Promise<TestAgent & { count(): number }> => {
    let count = 0;
    const agent = await startAgent(cluster.gateways[1]!.url, {
      name,
      concurrency: 64,
      cache,
      headers: { 'x-api-key': keys[`${tenant}-agent`]! },
      answer: (task) => {
        count += 1;
        return answer
          ? answer(task, count)
          : { action: 'task.result', taskId: task.taskId, output: { price: 10, calls: count } };
      },
    });
    open.push(agent);
    return Object.assign(agent, { count: () => count });
  };

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_API_KEY_SECRET: SECRET },
    });
    const url = cluster.gateways[0]!.httpUrl;
    for (const tenant of ['acme', 'globex']) {
      for (const role of ['caller', 'agent', 'admin']) {
        keys[`${tenant}-${role}`] = await createApiKey(url, ADMIN, { name: `${tenant}-${role}`, role, tenant });
      }
    }
  });
  afterAll(async () => {
    await Promise.all(open.map((s) => s.close()));
    await cluster.stop();
  });

  it('answers an identical call from the cache on any replica, never an error, a bypass or another task', async () => {
    const agent = await cachingAgent('acme', 'pricer', { tasks: ['quote'], ttlMs: 60_000 });
    const a = await as('acme-caller', 0);
    const b = await as('acme-caller', 1);
    const first = await call(a, { agent: 'pricer', data: { sku: 'a-1', qty: 2 } });
    expect(first).toMatchObject({ ok: true, result: { status: 'completed', output: { price: 10, calls: 1 } } });
    expect((first.result as { cached?: boolean }).cached).toBeUndefined();
    // The same input, keys in another order, on the other replica: answered from the cache.
    const second = await call(b, { agent: 'pricer', data: { qty: 2, sku: 'a-1' } });
    expect(second).toMatchObject({ ok: true, result: { status: 'completed', output: { calls: 1 }, cached: true } });
    expect((second.result as { taskId: string }).taskId).not.toBe((first.result as { taskId: string }).taskId);
    expect(agent.count()).toBe(1);
    // Another input, another task, and cache: false reach the agent.
    expect(await call(a, { agent: 'pricer', data: { sku: 'b-1', qty: 2 } })).toMatchObject({
      result: { output: { calls: 2 } },
    });
    expect(await call(a, { agent: 'pricer', task: 'other', data: { sku: 'a-1', qty: 2 } })).toMatchObject({
      result: { output: { calls: 3 } },
    });
    const bypass = await call(b, { agent: 'pricer', data: { sku: 'a-1', qty: 2 }, cache: false });
    expect(bypass).toMatchObject({ result: { output: { calls: 4 } } });
    expect((bypass.result as { cached?: boolean }).cached).toBeUndefined();
    // The bypass left the entry as it was.
    expect(await call(a, { agent: 'pricer', data: { sku: 'a-1', qty: 2 } })).toMatchObject({
      result: { output: { calls: 1 }, cached: true },
    });
    // A hit is audited as a hit.
    const trail = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'acme');
    expect(trail).toContainEqual(
      expect.objectContaining({
        type: 'task.routed',
        outcome: 'ok',
        details: expect.objectContaining({ agent: 'pricer', cached: true }),
      }),
    );
    // Counted: hits on replica B.
    const metrics = await (await fetch(`${cluster.gateways[1]!.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/openclaw_cache_lookups_total\{result="hit"\} [1-9]/);
    // Another tenant's agent of the same name, asked the same, answers for itself.
    const globexAgent = await cachingAgent('globex', 'pricer', { tasks: ['quote'], ttlMs: 60_000 });
    const globex = await as('globex-caller', 0);
    const theirs = await call(globex, { agent: 'pricer', data: { sku: 'a-1', qty: 2 } });
    expect(theirs).toMatchObject({ result: { output: { calls: 1 } } });
    expect((theirs.result as { cached?: boolean }).cached).toBeUndefined();
    expect(globexAgent.count()).toBe(1);
    // Invalidated: the next call reaches the agent again.
    const admin = await as('acme-admin', 1);
    expect(await admin.request({ action: 'cache.invalidate', id: 'i', agent: 'pricer', task: 'quote' })).toMatchObject({
      ok: true,
      result: { invalidated: 2 },
    });
    expect(await a.request({ action: 'cache.invalidate', id: 'j', agent: 'pricer' })).toMatchObject({
      error: { code: 'FORBIDDEN', details: { permission: 'cache:invalidate' } },
    });
    expect(await call(a, { agent: 'pricer', data: { sku: 'a-1', qty: 2 } })).toMatchObject({
      result: { output: { calls: 5 } },
    });
  });

  it('never caches an error, and forgets an entry after its ttl', async () => {
    await cachingAgent('acme', 'flaky', { tasks: ['quote'], ttlMs: 400 }, (task, count) =>
      count === 1
        ? { action: 'task.error', taskId: task.taskId, error: { code: 'DOWN', message: 'try later' } }
        : { action: 'task.result', taskId: task.taskId, output: { calls: count } },
    );
    const a = await as('acme-caller', 0);
    expect(await call(a, { agent: 'flaky', data: 1 })).toMatchObject({ ok: false, error: { code: 'AGENT_ERROR' } });
    expect(await call(a, { agent: 'flaky', data: 1 })).toMatchObject({ result: { output: { calls: 2 } } });
    expect(await call(a, { agent: 'flaky', data: 1 })).toMatchObject({
      result: { output: { calls: 2 }, cached: true },
    });
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await call(a, { agent: 'flaky', data: 1 })).toMatchObject({ result: { output: { calls: 3 } } });
  });

  it('lets identical calls in flight on both replicas reach the agent once, and all get its output or its error', async () => {
    const slow = await cachingAgent('acme', 'slow', { tasks: ['quote'], ttlMs: 60_000 }, () => undefined);
    const a = await as('acme-caller', 0);
    const b = await as('acme-caller', 1);
    const calls = Array.from({ length: 10 }, (_, i) => call(i % 2 === 0 ? a : b, { agent: 'slow', data: { q: 1 } }));
    await waitFor(() => slow.count() === 1, { what: 'the agent to get the call' });
    const task = slow.received[0]!;
    // Give the others time to join the flight, then answer once.
    await new Promise((resolve) => setTimeout(resolve, 300));
    slow.socket.send({ action: 'task.result', taskId: task.taskId, output: 'once' });
    const replies = await Promise.all(calls);
    expect(replies.every((r) => r.ok && (r.result as { output: unknown }).output === 'once')).toBe(true);
    expect(replies.filter((r) => (r.result as { cached?: boolean }).cached === true)).toHaveLength(9);
    expect(slow.count()).toBe(1);
    // An error is shared too, and not kept.
    const failing = Array.from({ length: 6 }, (_, i) => call(i % 2 === 0 ? a : b, { agent: 'slow', data: { q: 2 } }));
    await waitFor(() => slow.count() === 2, { what: 'the agent to get the second call' });
    const second = slow.received[1]!;
    await new Promise((resolve) => setTimeout(resolve, 300));
    slow.socket.send({ action: 'task.error', taskId: second.taskId, error: { code: 'NOPE', message: 'no quote' } });
    const failed = await Promise.all(failing);
    expect(failed.every((r) => !r.ok && (r.error as { code: string }).code === 'AGENT_ERROR')).toBe(true);
    expect(slow.count()).toBe(2);
  });

  it("reports each agent's policy, entries, hits and misses over GET /v1/cache, to its own tenant only", async () => {
    const agent = await cachingAgent('globex', 'stats-pricer', { tasks: ['quote'], ttlMs: 60_000 });
    const a = await as('globex-caller', 0);
    const b = await as('globex-caller', 1);
    for (const socket of [a, b, a, b]) await call(socket, { agent: 'stats-pricer', data: { sku: 's' } });
    expect(agent.count()).toBe(1);
    const cacheOf = async (key: string, replica = 0) => {
      const response = await fetch(`${cluster.gateways[replica]!.httpUrl}/v1/cache`, {
        headers: { 'x-api-key': keys[key]! },
      });
      return { status: response.status, body: (await response.json()) as { agents: Record<string, unknown>[] } };
    };
    // Counted on both replicas; the counters reach Redis every couple of seconds.
    await waitFor(
      async () => {
        const { body } = await cacheOf('globex-admin', 1);
        const row = body.agents.find((r) => r.agent === 'stats-pricer');
        return row?.hits === 3 && row.misses === 1;
      },
      { what: "stats-pricer's hits and misses" },
    );
    const { body } = await cacheOf('globex-admin');
    expect(body.agents.find((r) => r.agent === 'stats-pricer')).toEqual({
      agent: 'stats-pricer',
      policy: { tasks: ['quote'], ttlMs: 60_000 },
      entries: 1,
      hits: 3,
      misses: 1,
      shared: 0,
      stored: 1,
    });
    // Another tenant sees its own agents only; a caller may not read the figures.
    const acme = await cacheOf('acme-admin');
    expect(acme.status).toBe(200);
    expect(acme.body.agents.map((r) => r.agent)).not.toContain('stats-pricer');
    expect(await cacheOf('globex-caller')).toMatchObject({
      status: 403,
      body: { error: { code: 'FORBIDDEN', details: { permission: 'cache:read' } } },
    });
  });

  it('does not cache an output that governance redacted', async () => {
    await applyPolicy(cluster, ADMIN, 'governance:\n  secrets: { action: redact, directions: [response] }\n');
    const leaky = await cachingAgent('acme', 'leaky', { tasks: ['*'], ttlMs: 60_000 }, (task, count) => ({
      action: 'task.result',
      taskId: task.taskId,
      output: { key: 'AKIAABCDEFGHIJKLMNOP', calls: count },
    }));
    const a = await as('acme-caller', 0);
    const first = await call(a, { agent: 'leaky', data: 1 });
    expect(first).toMatchObject({ ok: true, result: { output: { calls: 1 } } });
    expect(JSON.stringify(first)).not.toContain('AKIAABCDEFGHIJKLMNOP');
    const second = await call(a, { agent: 'leaky', data: 1 });
    expect(second).toMatchObject({ result: { output: { calls: 2 } } });
    expect((second.result as { cached?: boolean }).cached).toBeUndefined();
    expect(leaky.count()).toBe(2);
    await applyPolicy(cluster, ADMIN, 'governance: {}\n');
  });

  it('refuses a bad cache declaration naming the field', async () => {
    const socket = await TestSocket.open(cluster.gateways[0]!.url, { headers: { 'x-api-key': keys['acme-agent']! } });
    open.push(socket);
    for (const [cache, field] of [
      [{ tasks: ['a'], ttlMs: 0 }, 'cache.ttlMs'],
      [{ tasks: ['a'], ttlMs: 90_000_000 }, 'cache.ttlMs'],
      [{ tasks: 'a', ttlMs: 1000 }, 'cache.tasks'],
      [{ tasks: ['a'] }, 'cache.ttlMs'],
    ] as const) {
      const reply = await socket.request({ action: 'register', id: `r${n++}`, name: 'bad-cache', cache });
      expect(reply).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      expect((reply.error as { details: { field: string }[] }).details.map((d) => d.field)).toContain(field);
    }
  });
});
