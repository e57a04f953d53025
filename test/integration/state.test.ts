import { connect, type GatewayClient, type StateChange } from '@openclaw/sdk';
import { auditTail, createApiKey, runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { submitAsync, taskEnd } from '../helpers/tasks';
import { waitFor } from '../helpers/wait';
import { type Frame, TestSocket } from '../helpers/ws-client';

const ADMIN = 'bootstrap-admin-key-for-state-0001';
const SECRET = 'a-server-secret-of-at-least-32-characters!';

/** Shared state (`state.*`) and memory (`memory.*`) on two real replicas and one Redis, with tenants and roles. */
describe('shared state and memory', () => {
  let cluster: Cluster;
  const keys: Record<string, string> = {};
  const sockets: TestSocket[] = [];
  let n = 0;
  const as = async (key: string, replica: number): Promise<TestSocket> => {
    const socket = await TestSocket.open(cluster.gateways[replica]!.url, { headers: { 'x-api-key': keys[key]! } });
    sockets.push(socket);
    return socket;
  };
  const ask = (socket: TestSocket, action: string, params: Record<string, unknown>) =>
    socket.request({ action, id: `r${n++}`, ...params });

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_API_KEY_SECRET: SECRET, OPENCLAW_MEMORY_MAX_ENTRIES: '50' },
      workers: 1,
    });
    const url = cluster.gateways[0]!.httpUrl;
    for (const tenant of ['acme', 'globex']) {
      keys[`${tenant}-caller`] = await createApiKey(url, ADMIN, { name: `${tenant}-caller`, role: 'caller', tenant });
      keys[`${tenant}-admin`] = await createApiKey(url, ADMIN, { name: `${tenant}-admin`, role: 'admin', tenant });
    }
    keys['acme-agent'] = await createApiKey(url, ADMIN, { name: 'acme-agent', role: 'agent', tenant: 'acme' });
    keys['acme-approver'] = await createApiKey(url, ADMIN, { name: 'acme-approver', role: 'approver', tenant: 'acme' });
  });
  afterAll(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await cluster.stop();
  });

  it('writes on one replica and reads on the other, versioned, with compare-and-set and delete', async () => {
    const a = await as('acme-caller', 0);
    const b = await as('acme-caller', 1);
    const at = Date.now();
    expect(await ask(a, 'state.set', { namespace: 'orders', key: 'o-1', value: { total: 10 } })).toMatchObject({
      ok: true,
      result: { version: 1 },
    });
    const read = await ask(b, 'state.get', { namespace: 'orders', key: 'o-1' });
    expect(read).toMatchObject({
      ok: true,
      result: { namespace: 'orders', key: 'o-1', value: { total: 10 }, version: 1 },
    });
    expect((read.result as { updatedAt: number }).updatedAt).toBeGreaterThanOrEqual(at - 1000);
    expect((read.result as { expiresAt?: number }).expiresAt).toBeUndefined();
    expect(await ask(b, 'state.set', { namespace: 'orders', key: 'o-1', value: null })).toMatchObject({
      result: { version: 2 },
    });
    expect(await ask(a, 'state.get', { namespace: 'orders', key: 'o-1' })).toMatchObject({
      result: { value: null, version: 2 },
    });
    // Compare-and-set: a stale version, and "only if absent" on a key that exists, are refused.
    for (const ifVersion of [1, 0, 3]) {
      expect(await ask(a, 'state.set', { namespace: 'orders', key: 'o-1', value: 'x', ifVersion })).toMatchObject({
        ok: false,
        error: { code: 'CONFLICT', details: { version: 2 } },
      });
    }
    expect(await ask(a, 'state.set', { namespace: 'orders', key: 'o-2', value: 'new', ifVersion: 0 })).toMatchObject({
      result: { version: 1 },
    });
    expect(await ask(a, 'state.set', { namespace: 'orders', key: 'o-1', value: 'x', ifVersion: 2 })).toMatchObject({
      result: { version: 3 },
    });
    expect(await ask(b, 'state.delete', { namespace: 'orders', key: 'o-1', ifVersion: 2 })).toMatchObject({
      error: { code: 'CONFLICT', details: { version: 3 } },
    });
    expect(await ask(b, 'state.delete', { namespace: 'orders', key: 'o-1', ifVersion: 3 })).toMatchObject({
      result: { deleted: true },
    });
    expect(await ask(b, 'state.delete', { namespace: 'orders', key: 'o-1' })).toMatchObject({
      result: { deleted: false },
    });
    expect(await ask(a, 'state.get', { namespace: 'orders', key: 'o-1' })).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
    expect(await ask(a, 'state.delete', { namespace: 'orders', key: 'o-1', ifVersion: 1 })).toMatchObject({
      error: { code: 'CONFLICT', details: { version: 0 } },
    });
    // Writes are audited in the tenant's trail.
    const trail = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'acme');
    expect(trail).toContainEqual(
      expect.objectContaining({
        type: 'state.changed',
        details: expect.objectContaining({ namespace: 'orders', key: 'o-1', op: 'delete' }),
      }),
    );
  });

  it('lists a namespace a page at a time, with a prefix, each key once', async () => {
    const a = await as('acme-caller', 0);
    for (let i = 0; i < 25; i++) {
      await ask(a, 'state.set', { namespace: 'catalog', key: `item:${String(i).padStart(2, '0')}`, value: i });
    }
    await ask(a, 'state.set', { namespace: 'catalog', key: 'other', value: 0 });
    await ask(a, 'state.set', { namespace: 'catalog', key: 'itemless', value: 0 });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await ask(a, 'state.list', { namespace: 'catalog', prefix: 'item:', limit: 10, cursor });
      expect(page.ok).toBe(true);
      const result = page.result as { items: { key: string; version: number; updatedAt: number }[]; cursor?: string };
      expect(result.items.length).toBeLessThanOrEqual(10);
      for (const item of result.items) {
        expect(item).toMatchObject({ version: 1, updatedAt: expect.any(Number) });
        seen.push(item.key);
      }
      cursor = result.cursor ?? undefined;
      pages += 1;
    } while (cursor !== undefined && pages < 10);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.sort()).toEqual(Array.from({ length: 25 }, (_, i) => `item:${String(i).padStart(2, '0')}`));
    const all = await ask(a, 'state.list', { namespace: 'catalog' });
    expect((all.result as { items: unknown[] }).items).toHaveLength(27);
    expect((all.result as { cursor?: string }).cursor).toBeUndefined();
    expect(await ask(a, 'state.list', { namespace: 'catalog', prefix: 'item:', cursor: 'not a cursor' })).toMatchObject(
      { ok: false, error: { code: 'BAD_REQUEST', details: [{ field: 'cursor' }] } },
    );
    expect(await ask(a, 'state.list', { namespace: 'nothing-here' })).toMatchObject({
      ok: true,
      result: { items: [] },
    });
  });

  it('tells watchers on every replica of sets, deletes and expiries, for their prefix only', async () => {
    const writer = await as('acme-caller', 0);
    const watcher = await as('acme-caller', 1);
    expect(await ask(watcher, 'state.watch', { namespace: 'sessions', prefix: 'user:' })).toMatchObject({
      ok: true,
      result: { watching: true },
    });
    const changes: Frame[] = [];
    const next = async () => {
      const frame = await watcher.nextEvent('state.changed', 10_000);
      changes.push(frame);
      return frame;
    };
    await ask(writer, 'state.set', { namespace: 'sessions', key: 'admin:1', value: 1 });
    await ask(writer, 'state.set', { namespace: 'sessions', key: 'user:1', value: 'a' });
    expect(await next()).toEqual({
      event: 'state.changed',
      namespace: 'sessions',
      key: 'user:1',
      version: 1,
      op: 'set',
    });
    await ask(writer, 'state.delete', { namespace: 'sessions', key: 'user:1' });
    expect(await next()).toMatchObject({ key: 'user:1', version: 1, op: 'delete' });
    const set = await ask(writer, 'state.set', { namespace: 'sessions', key: 'user:2', value: 'b', ttlMs: 400 });
    expect(set).toMatchObject({ ok: true, result: { version: 1, expiresAt: expect.any(Number) } });
    expect(await ask(watcher, 'state.get', { namespace: 'sessions', key: 'user:2' })).toMatchObject({
      result: { value: 'b', expiresAt: (set.result as { expiresAt: number }).expiresAt },
    });
    expect(await next()).toMatchObject({ key: 'user:2', op: 'set' });
    expect(await next()).toMatchObject({ key: 'user:2', version: 1, op: 'expire' });
    expect(await ask(writer, 'state.get', { namespace: 'sessions', key: 'user:2' })).toMatchObject({
      error: { code: 'NOT_FOUND' },
    });
    expect(
      (
        (await ask(writer, 'state.list', { namespace: 'sessions', prefix: 'user:' })).result as {
          items: unknown[];
        }
      ).items,
    ).toEqual([]);
    // A write without a TTL keeps the key: setting it again ends an earlier TTL.
    await ask(writer, 'state.set', { namespace: 'sessions', key: 'user:3', value: 1, ttlMs: 300 });
    await ask(writer, 'state.set', { namespace: 'sessions', key: 'user:3', value: 2 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await ask(writer, 'state.get', { namespace: 'sessions', key: 'user:3' })).toMatchObject({
      result: { value: 2, version: 2 },
    });
    expect(changes.some((c) => c.key === 'admin:1')).toBe(false);
    expect(await ask(watcher, 'state.unwatch', { namespace: 'sessions', prefix: 'user:' })).toMatchObject({
      result: { watching: false },
    });
  });

  it('never shows one tenant another’s state, and asks for state permissions per namespace', async () => {
    const acme = await as('acme-caller', 0);
    const globex = await as('globex-caller', 1);
    const globexAdmin = await as('globex-admin', 0);
    await ask(acme, 'state.set', { namespace: 'secrets', key: 'plan', value: 'acme only' });
    expect(await ask(globex, 'state.watch', { namespace: 'secrets' })).toMatchObject({ ok: true });
    for (const other of [globex, globexAdmin]) {
      expect(await ask(other, 'state.get', { namespace: 'secrets', key: 'plan' })).toMatchObject({
        error: { code: 'NOT_FOUND' },
      });
      expect(await ask(other, 'state.list', { namespace: 'secrets' })).toMatchObject({ result: { items: [] } });
    }
    // The same namespace and key in another tenant are another key.
    expect(await ask(globex, 'state.set', { namespace: 'secrets', key: 'plan', value: 'globex' })).toMatchObject({
      result: { version: 1 },
    });
    expect(await globex.nextEvent('state.changed', 5_000)).toMatchObject({ key: 'plan', version: 1 });
    await ask(acme, 'state.set', { namespace: 'secrets', key: 'plan', value: 'acme again' });
    await expect(globex.nextEvent('state.changed', 1_000)).rejects.toThrow(/timed out/);
    expect(await ask(acme, 'state.get', { namespace: 'secrets', key: 'plan' })).toMatchObject({
      result: { value: 'acme again', version: 2 },
    });
    const approver = await as('acme-approver', 1);
    expect(await ask(approver, 'state.get', { namespace: 'secrets', key: 'plan' })).toMatchObject({
      error: { code: 'FORBIDDEN', details: { permission: 'state:read:secrets' } },
    });
    expect(await ask(approver, 'state.set', { namespace: 'secrets', key: 'plan', value: 1 })).toMatchObject({
      error: { code: 'FORBIDDEN', details: { permission: 'state:write:secrets' } },
    });
  });

  it('answers bad names, types and sizes with BAD_REQUEST or PAYLOAD_TOO_LARGE naming the field', async () => {
    const a = await as('acme-caller', 0);
    const cases: [Record<string, unknown>, string][] = [
      [{ namespace: 'Bad NS', key: 'k', value: 1 }, 'namespace'],
      [{ namespace: 'ok', key: '', value: 1 }, 'key'],
      [{ namespace: 'ok', key: 'k'.repeat(513), value: 1 }, 'key'],
      [{ namespace: 'ok', key: 'k' }, 'value'],
      [{ namespace: 'ok', key: 'k', value: 1, ttlMs: -5 }, 'ttlMs'],
      [{ namespace: 'ok', key: 'k', value: 1, ifVersion: 'one' }, 'ifVersion'],
      [{ namespace: 7, key: 'k', value: 1 }, 'namespace'],
    ];
    for (const [params, field] of cases) {
      const reply = await ask(a, 'state.set', params);
      expect(reply).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      expect((reply.error as { details: { field: string }[] }).details.map((d) => d.field)).toContain(field);
    }
    const big = await ask(a, 'state.set', { namespace: 'ok', key: 'big', value: 'x'.repeat(300 * 1024) });
    expect(big).toMatchObject({
      ok: false,
      error: { code: 'PAYLOAD_TOO_LARGE', details: [{ field: 'value' }] },
    });
    expect(await ask(a, 'state.list', { namespace: 'ok', limit: 5000 })).toMatchObject({
      error: { code: 'BAD_REQUEST', details: [{ field: 'limit' }] },
    });
    // Still connected and served.
    expect(await ask(a, 'ping', {})).toMatchObject({ ok: true });
  });

  it('lets exactly one of many concurrent compare-and-set writers on two replicas win each round', async () => {
    const writers = await Promise.all(Array.from({ length: 16 }, (_, i) => as('acme-caller', i % 2)));
    await ask(writers[0]!, 'state.set', { namespace: 'race', key: 'counter', value: 0 });
    for (let round = 1; round <= 5; round++) {
      const replies = await Promise.all(
        writers.map((w, i) =>
          ask(w, 'state.set', { namespace: 'race', key: 'counter', value: { round, writer: i }, ifVersion: round }),
        ),
      );
      const won = replies.filter((r) => r.ok);
      expect(won).toHaveLength(1);
      expect(won[0]).toMatchObject({ result: { version: round + 1 } });
      for (const lost of replies.filter((r) => !r.ok)) {
        expect(lost).toMatchObject({ error: { code: 'CONFLICT', details: { version: round + 1 } } });
      }
    }
  });

  it('keeps a thread of entries in order, read whole, after a number or the newest few, on any replica', async () => {
    const a = await as('acme-caller', 0);
    const b = await as('acme-caller', 1);
    expect(
      await ask(a, 'memory.append', {
        thread: 'case-7',
        entries: [
          { role: 'customer', content: 'My bill is wrong' },
          { role: 'query-agent', content: { route: 'billing' }, meta: { confidence: 0.4 } },
        ],
      }),
    ).toMatchObject({ ok: true, result: { thread: 'case-7', seq: 2 } });
    expect(
      await ask(b, 'memory.append', { thread: 'case-7', entries: [{ role: 'billing', content: 'Refund issued' }] }),
    ).toMatchObject({ result: { seq: 3 } });
    const whole = await ask(b, 'memory.read', { thread: 'case-7' });
    expect(whole).toMatchObject({
      ok: true,
      result: {
        thread: 'case-7',
        entries: [
          { seq: 1, role: 'customer', content: 'My bill is wrong', at: expect.any(Number) },
          { seq: 2, role: 'query-agent', content: { route: 'billing' }, meta: { confidence: 0.4 } },
          { seq: 3, role: 'billing', content: 'Refund issued' },
        ],
      },
    });
    const seqs = async (params: Record<string, unknown>) =>
      (
        (await ask(a, 'memory.read', { thread: 'case-7', ...params })).result as { entries: { seq: number }[] }
      ).entries.map((e) => e.seq);
    expect(await seqs({ after: 1 })).toEqual([2, 3]);
    expect(await seqs({ last: 2 })).toEqual([2, 3]);
    expect(await seqs({ after: 1, last: 1 })).toEqual([3]);
    expect(await seqs({ after: 3 })).toEqual([]);
    expect(await ask(a, 'memory.read', { thread: 'never-written' })).toMatchObject({ result: { entries: [] } });
    // Cleared, and numbered on from where it was: numbers are never reused.
    expect(await ask(b, 'memory.clear', { thread: 'case-7' })).toMatchObject({ result: { cleared: 3 } });
    expect(await seqs({})).toEqual([]);
    expect(
      await ask(a, 'memory.append', { thread: 'case-7', entries: [{ role: 'customer', content: 'Thanks' }] }),
    ).toMatchObject({ result: { seq: 4 } });
    // Another tenant's thread of the same name is another thread; a principal without the permission is refused.
    const globex = await as('globex-admin', 0);
    expect(await ask(globex, 'memory.read', { thread: 'case-7' })).toMatchObject({ result: { entries: [] } });
    expect(await ask(globex, 'memory.clear', { thread: 'case-7' })).toMatchObject({ result: { cleared: 0 } });
    expect(await seqs({})).toEqual([4]);
    const approver = await as('acme-approver', 1);
    expect(await ask(approver, 'memory.read', { thread: 'case-7' })).toMatchObject({
      error: { code: 'FORBIDDEN', details: { permission: 'memory:read:case-7' } },
    });
  });

  it('keeps a thread’s newest entries, drops it when idle, and refuses bad entries naming the field', async () => {
    const a = await as('acme-caller', 0);
    for (let i = 0; i < 3; i++) {
      await ask(a, 'memory.append', {
        thread: 'long',
        entries: Array.from({ length: 20 }, (_, j) => ({ role: 'r', content: i * 20 + j + 1 })),
      });
    }
    const kept = (await ask(a, 'memory.read', { thread: 'long' })).result as {
      entries: { seq: number; content: number }[];
    };
    // OPENCLAW_MEMORY_MAX_ENTRIES is 50 here.
    expect(kept.entries.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 11));
    expect(kept.entries.every((e) => e.seq === e.content)).toBe(true);
    // Idle retention: the thread's keys expire 7 days (the default) after the last append.
    const redis = cluster.redis.client();
    const ttl = await redis.pttl(`${cluster.keyPrefix}:{mem:acme:long}:log`);
    redis.disconnect();
    expect(ttl).toBeGreaterThan(7 * 24 * 3_600_000 - 60_000);
    expect(ttl).toBeLessThanOrEqual(7 * 24 * 3_600_000);
    const bad: [Record<string, unknown>, string][] = [
      [{ thread: 'x', entries: [] }, 'entries'],
      [{ thread: 'x', entries: [{ content: 'no role' }] }, 'entries.0.role'],
      [{ thread: 'x', entries: [{ role: 'r' }] }, 'entries.0.content'],
      [{ thread: 'Not A Thread', entries: [{ role: 'r', content: 1 }] }, 'thread'],
      [{ thread: 'x', entries: Array.from({ length: 101 }, () => ({ role: 'r', content: 1 })) }, 'entries'],
    ];
    for (const [params, field] of bad) {
      const reply = await ask(a, 'memory.append', params);
      expect(reply).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      expect((reply.error as { details: { field: string }[] }).details.map((d) => d.field)).toContain(field);
    }
    expect(await ask(a, 'memory.read', { thread: 'x', last: 0 })).toMatchObject({
      error: { code: 'BAD_REQUEST', details: [{ field: 'last' }] },
    });
    expect(
      await ask(a, 'memory.append', { thread: 'x', entries: [{ role: 'r', content: 'x'.repeat(300 * 1024) }] }),
    ).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE', details: [{ field: 'entries' }] } });
  });

  it('gives a call’s thread to its agent, in sync calls, async tasks and every step of a workflow', async () => {
    const agent = await startAgent(cluster.gateways[1]!.url, {
      name: 'support',
      headers: { 'x-api-key': keys['acme-agent']! },
      answer: (t) => ({ action: 'task.result', taskId: t.taskId, output: { thread: t.thread ?? null } }),
    });
    const caller = await as('acme-caller', 0);
    expect(await ask(caller, 'coordinator', { agent: 'support', task: 'answer', thread: 'case-9' })).toMatchObject({
      ok: true,
      result: { output: { thread: 'case-9' } },
    });
    expect(await ask(caller, 'coordinator', { agent: 'support', task: 'answer' })).toMatchObject({
      result: { output: { thread: null } },
    });
    const asyncId = await submitAsync(caller, { agent: 'support', task: 'answer', thread: 'case-10' });
    expect(await taskEnd(caller, asyncId)).toMatchObject({ status: 'completed', output: { thread: 'case-10' } });
    const started = await ask(caller, 'workflow.start', {
      workflow: {
        steps: [
          { id: 'first', agent: 'support', task: 'answer' },
          { id: 'second', agent: 'support', task: 'answer' },
        ],
      },
      thread: 'case-11',
    });
    const workflowId = (started.result as { taskId: string }).taskId;
    expect(await taskEnd(caller, workflowId)).toMatchObject({ status: 'completed' });
    expect(agent.received.slice(-2).map((t) => t.thread)).toEqual(['case-11', 'case-11']);
    expect(await ask(caller, 'coordinator', { agent: 'support', task: 'answer', thread: 'Bad Thread' })).toMatchObject({
      error: { code: 'BAD_REQUEST', details: [{ field: 'thread' }] },
    });
    await agent.close();
  });

  it('serves the SDK: client.state and client.memory, ctx.thread and ctx.memory, and a watch that outlives a replica restart', async () => {
    const clients: GatewayClient[] = [];
    const open = async (key: string, replica: number) => {
      const client = await connect({
        url: cluster.gateways[replica]!.url,
        apiKey: keys[key],
        reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
      });
      clients.push(client);
      return client;
    };
    const agentClient = await open('acme-agent', 0);
    const caller = await open('acme-caller', 0);
    const watcher = await open('acme-caller', 1);
    // An agent that reads the conversation so far and adds its answer to it.
    const support = agentClient.agent('sdk-support');
    support.handle('answer', async (_data, ctx) => {
      const history = (await ctx.memory?.read()) ?? [];
      await ctx.memory?.append({ role: 'sdk-support', content: `seen ${history.length}` });
      return { thread: ctx.thread ?? null, seen: history.map((e) => e.content) };
    });
    await support.register();
    await caller.memory.append('sdk-case', { role: 'customer', content: 'hello' });
    expect(await caller.call('sdk-support', 'answer', {}, { thread: 'sdk-case' })).toEqual({
      thread: 'sdk-case',
      seen: ['hello'],
    });
    expect((await caller.memory.read('sdk-case')).map((e) => [e.seq, e.role, e.content])).toEqual([
      [1, 'customer', 'hello'],
      [2, 'sdk-support', 'seen 1'],
    ]);
    expect(await caller.call('sdk-support', 'answer', {})).toEqual({ thread: null, seen: [] });

    // State, with compare-and-set and a watch.
    const changes: StateChange[] = [];
    await watcher.state.watch('sdk-ns', (change) => changes.push(change), { prefix: 'k' });
    expect(await caller.state.set('sdk-ns', 'k1', { a: 1 }, { ifVersion: 0 })).toMatchObject({ version: 1 });
    expect(await caller.state.get('sdk-ns', 'k1')).toMatchObject({ value: { a: 1 }, version: 1 });
    expect(await caller.state.get('sdk-ns', 'missing')).toBeUndefined();
    await expect(caller.state.set('sdk-ns', 'k1', 2, { ifVersion: 0 })).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { version: 1 },
    });
    const listed: string[] = [];
    for await (const item of caller.state.keys('sdk-ns')) listed.push(item.key);
    expect(listed).toEqual(['k1']);
    await waitFor(() => changes.length === 1, { what: 'the first change' });
    // The watcher's replica restarts: the SDK reconnects and watches again by itself.
    const { replica } = await cluster.replaceReplica(cluster.gateways[1]!, 'B2');
    await waitFor(() => watcher.connectionState === 'connected' && watcher.session?.replica === replica.replicaId, {
      what: 'the watcher reconnected to the new replica',
      timeoutMs: 20_000,
    });
    await waitFor(
      async () => {
        await caller.state.set('sdk-ns', 'k2', Date.now());
        return changes.some((c) => c.key === 'k2');
      },
      { what: 'a change after the restart to reach the watcher', timeoutMs: 10_000, intervalMs: 200 },
    );
    expect(await caller.state.delete('sdk-ns', 'k1')).toBe(true);
    await waitFor(() => changes.some((c) => c.key === 'k1' && c.op === 'delete'), { what: 'the delete' });
    await Promise.all(clients.map((c) => c.close()));
  }, 60_000);

  it('serves state, memory and cache invalidation over HTTP and the CLI, with the same permissions', async () => {
    const url = cluster.gateways[0]!.httpUrl;
    const http = (key: string, method: string, path: string, body?: unknown) =>
      fetch(`${url}${path}`, {
        method,
        headers: { 'x-api-key': keys[key]!, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const put = await http('acme-caller', 'PUT', '/v1/state/http-ns/a%2Fkey', { value: { n: 1 } });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ version: 1 });
    expect(await (await http('acme-caller', 'GET', '/v1/state/http-ns/a%2Fkey')).json()).toMatchObject({
      key: 'a/key',
      value: { n: 1 },
      version: 1,
    });
    const conflict = await http('acme-caller', 'PUT', '/v1/state/http-ns/a%2Fkey', { value: 2, ifVersion: 0 });
    expect(conflict.status).toBe(409);
    expect(await conflict.json()).toMatchObject({ error: { code: 'CONFLICT', details: { version: 1 } } });
    expect((await http('acme-caller', 'PUT', '/v1/state/Bad%20NS/k', { value: 1 })).status).toBe(400);
    expect((await http('acme-approver', 'GET', '/v1/state/http-ns/a%2Fkey')).status).toBe(403);
    expect((await http('globex-admin', 'GET', '/v1/state/http-ns/a%2Fkey')).status).toBe(404);
    expect(await (await http('acme-caller', 'GET', '/v1/state/http-ns?prefix=a')).json()).toMatchObject({
      items: [{ key: 'a/key', version: 1 }],
    });
    expect(
      await (
        await http('acme-caller', 'POST', '/v1/memory/http-thread', { entries: [{ role: 'r', content: 'x' }] })
      ).json(),
    ).toMatchObject({ seq: 1 });
    expect(await (await http('acme-caller', 'GET', '/v1/memory/http-thread?last=1')).json()).toMatchObject({
      entries: [{ seq: 1, role: 'r', content: 'x' }],
    });
    expect((await http('acme-caller', 'POST', '/v1/cache/invalidate', { agent: 'nobody' })).status).toBe(403);
    expect(await (await http('acme-admin', 'POST', '/v1/cache/invalidate', { agent: 'nobody' })).json()).toEqual({
      invalidated: 0,
    });

    // The namespaces a principal may read, with their key counts; never another tenant's.
    const namespacesOf = async (key: string) =>
      ((await (await http(key, 'GET', '/v1/state')).json()) as { namespaces: { namespace: string; keys: number }[] })
        .namespaces;
    expect(await namespacesOf('acme-caller')).toContainEqual(
      expect.objectContaining({ namespace: 'http-ns', keys: 1, since: expect.any(Number) }),
    );
    expect((await namespacesOf('globex-admin')).map((n) => n.namespace)).not.toContain('http-ns');
    expect(await namespacesOf('acme-approver')).toEqual([]);

    // The CLI, with the caller's key.
    const cli = (...args: string[]) => runCli([...args, '--url', url, '--api-key', keys['acme-caller']!]);
    expect((await cli('state', 'set', 'cli-ns', 'greeting', '"hello"')).stdout.trim()).toBe('version 1');
    expect((await cli('state', 'get', 'cli-ns', 'greeting')).stdout.trim()).toBe('"hello"');
    expect((await cli('state', 'list', 'cli-ns')).stdout).toContain('greeting');
    const stale = await cli('state', 'set', 'cli-ns', 'greeting', '"again"', '--if-version', '0');
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toContain("key 'greeting' of namespace 'cli-ns' is at version 1, not 0");
    expect((await cli('state', 'namespaces')).stdout).toMatch(/^cli-ns\s+1$/m);
    expect((await cli('state', 'delete', 'cli-ns', 'greeting')).stdout.trim()).toBe('deleted');
    // Emptied: listed with no keys for a while (a writer may fill it again), then no more.
    expect((await cli('state', 'namespaces')).stdout).toMatch(/^cli-ns\s+0$/m);
    expect((await cli('memory', 'read', 'http-thread')).stdout).toMatch(/^1 \S+ r: x$/m);
    const refused = await cli('cache', 'invalidate', '--agent', 'nobody');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('cache:invalidate');
  }, 60_000);

  // One Redis killed and restarted (a Redis Cluster's failover is tested in redis-cluster.test.ts).
  const singleRedis = process.env.OPENCLAW_TEST_REDIS === 'cluster' ? it.skip : it;
  singleRedis(
    'answers UNAVAILABLE while Redis is down, and serves again once it is back',
    async () => {
      const a = await as('acme-caller', 0);
      await ask(a, 'state.set', { namespace: 'outage', key: 'k', value: 1 });
      await cluster.redis.kill();
      await waitFor(
        async () => (await ask(a, 'state.get', { namespace: 'outage', key: 'k' })).error?.code === 'UNAVAILABLE',
        { what: 'UNAVAILABLE while Redis is down', timeoutMs: 10_000 },
      );
      expect(await ask(a, 'state.set', { namespace: 'outage', key: 'k', value: 2 })).toMatchObject({
        error: { code: 'UNAVAILABLE', retryable: true },
      });
      await cluster.redis.restart();
      await waitFor(async () => (await ask(a, 'state.set', { namespace: 'outage', key: 'k', value: 3 })).ok === true, {
        what: 'state served again',
        timeoutMs: 20_000,
      });
    },
    60_000,
  );
});
