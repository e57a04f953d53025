import Redis from 'ioredis';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { RedisMonitor } from '../helpers/redis-monitor';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

/** Cross-replica routing against a real Redis and two real gateway processes. */
describe('routing across replicas', () => {
  let cluster: Cluster;
  let a: string;
  let b: string;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    a = cluster.gateways[0]!.url;
    b = cluster.gateways[1]!.url;
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('gives a caller on replica A the output of an agent on replica B, with progress on the way', async () => {
    const agent = await startAgent(b, {
      name: 'echo-ab',
      answer: 'manual',
    });
    const caller = await TestSocket.open(a);
    caller.send({ action: 'coordinator', id: 'c1', agent: 'echo-ab', task: 'process-data', data: { n: 1 } });
    const task = await agent.socket.nextEvent('task');
    expect(task).toMatchObject({ task: 'process-data', data: { n: 1 }, from: { principal: 'anonymous' }, attempt: 1 });
    // This cluster does not trace: agents get no trace context that names no trace.
    expect(task).not.toHaveProperty('traceparent');
    agent.socket.send({ action: 'task.progress', taskId: task.taskId, progress: { pct: 50 } });
    const progress = await caller.nextEvent('task.progress');
    expect(progress).toEqual({ event: 'task.progress', id: 'c1', taskId: task.taskId, progress: { pct: 50 } });
    agent.socket.send({ action: 'task.result', taskId: task.taskId, output: { sum: 42 } });
    const response = await caller.nextResponse((r) => r.id === 'c1');
    expect(response).toEqual({
      id: 'c1',
      ok: true,
      result: { taskId: task.taskId, status: 'completed', output: { sum: 42 } },
    });
    await caller.close();
    await agent.close();
  });

  it('answers the plain browser frame with no id in development mode', async () => {
    const agent = await startAgent(b, { name: 'my-agent', label: 'B' });
    const browser = await TestSocket.open(a, { origin: 'http://localhost:5173' });
    const response = await browser.request({ action: 'coordinator', agent: 'my-agent', task: 'process-data' });
    expect(response).toMatchObject({
      id: null,
      ok: true,
      result: { status: 'completed', output: { echo: null, by: 'B' } },
    });
    await browser.close();
    await agent.close();
  });

  // On Redis Cluster the inboxes use sharded pub/sub: redis-cluster.test.ts counts those publishes.
  const singleRedis = process.env.OPENCLAW_TEST_REDIS === 'cluster' ? it.skip : it;

  singleRedis(
    'sends a cross-replica task as one publish to the holder inbox and one reply to the origin inbox',
    async () => {
      const agent = await startAgent(b, { name: 'counted' });
      const caller = await TestSocket.open(a);
      const publishes: string[] = [];
      const fence = `fence-${process.pid}-${Date.now()}`;
      let fenced = false;
      const monitor = await RedisMonitor.open(cluster.redis.url, ([name, first, second]) => {
        if (name === 'echo' && first === fence) fenced = true;
        if (name === 'publish' && !(second ?? '').includes('"canary"')) publishes.push(first!);
      });
      const fencing = new Redis(cluster.redis.url);
      try {
        const response = await caller.request({ action: 'coordinator', id: 1, agent: 'counted', task: 't' });
        expect(response.ok).toBe(true);
        // MONITOR reports commands in the order Redis ran them: once it has reported a command sent
        // after the response, it has reported every publish of the call.
        await fencing.echo(fence);
        await waitFor(() => fenced, { what: 'MONITOR to report the fence command' });
      } finally {
        monitor.close();
        fencing.disconnect();
      }
      expect(publishes).toEqual([`${cluster.keyPrefix}:{inbox:B}`, `${cluster.keyPrefix}:{inbox:A}`]);
      await caller.close();
      await agent.close();
    },
  );

  it('spreads tasks over instances on different replicas and honours concurrency', async () => {
    const onA = await startAgent(a, { name: 'pool', concurrency: 1, label: 'A', answer: 'manual' });
    const onB = await startAgent(b, { name: 'pool', concurrency: 1, label: 'B', answer: 'manual' });
    const caller = await TestSocket.open(a);
    caller.send({ action: 'coordinator', id: 1, agent: 'pool', task: 't', timeoutMs: 20_000 });
    caller.send({ action: 'coordinator', id: 2, agent: 'pool', task: 't', timeoutMs: 20_000 });
    const first = await onA.socket.nextEvent('task');
    const second = await onB.socket.nextEvent('task');
    // Both instances are at their limit of 1: a third call is refused, not queued on either.
    const third = await caller.request({ action: 'coordinator', id: 3, agent: 'pool', task: 't' });
    // Refused before any agent got it: marked so a client may send it again without running it twice.
    expect(third).toMatchObject({
      ok: false,
      error: { code: 'AGENT_UNAVAILABLE', retryable: true, dispatched: false },
    });
    expect(onA.socket.pending().filter((f) => f.event === 'task')).toHaveLength(0);
    expect(onB.socket.pending().filter((f) => f.event === 'task')).toHaveLength(0);
    // A frees up: the next call goes to A, the only instance with room. (Which of calls 1 and 2 went
    // to A is a random tie-break, so responses are matched by output.)
    const output = (r: { result?: unknown }) => (r.result as { output?: unknown } | undefined)?.output;
    onA.socket.send({ action: 'task.result', taskId: first.taskId, output: 'a' });
    expect(await caller.nextResponse((r) => output(r) === 'a')).toMatchObject({ ok: true });
    caller.send({ action: 'coordinator', id: 4, agent: 'pool', task: 't', timeoutMs: 20_000 });
    const fourth = await onA.socket.nextEvent('task');
    onA.socket.send({ action: 'task.result', taskId: fourth.taskId, output: 'a2' });
    onB.socket.send({ action: 'task.result', taskId: second.taskId, output: 'b' });
    expect(await caller.nextResponse((r) => r.id === 4)).toMatchObject({ ok: true, result: { output: 'a2' } });
    expect(await caller.nextResponse((r) => output(r) === 'b')).toMatchObject({ ok: true });
    await Promise.all([caller.close(), onA.close(), onB.close()]);
  });

  it('holds an instance to its concurrency when calls come from several replicas at once', async () => {
    const agent = await startAgent(b, { name: 'single', concurrency: 1, answer: 'manual' });
    const callers = [await TestSocket.open(a), await TestSocket.open(b)];
    // Neither origin knows of the other's call: the replica holding the instance lets one through.
    for (const [i, caller] of callers.entries()) {
      caller.send({ action: 'coordinator', id: `c${i}`, agent: 'single', task: 't', timeoutMs: 20_000 });
    }
    const task = await agent.socket.nextEvent('task');
    await waitFor(() => callers.some((c) => c.pending().some((f) => (f as { ok?: boolean }).ok === false)), {
      what: 'the other call refused',
    });
    expect(agent.socket.pending().filter((f) => f.event === 'task')).toHaveLength(0);
    agent.socket.send({ action: 'task.result', taskId: task.taskId, output: 'one' });
    const responses = await Promise.all(callers.map((c, i) => c.nextResponse((r) => r.id === `c${i}`)));
    expect(responses.find((r) => r.ok)).toMatchObject({ result: { output: 'one' } });
    expect(responses.find((r) => !r.ok)).toMatchObject({
      error: { code: 'AGENT_UNAVAILABLE', retryable: true, dispatched: false },
    });
    await Promise.all([...callers.map((c) => c.close()), agent.close()]);
  });

  it('gives AGENT_NOT_FOUND for an unknown agent and for a task no instance handles', async () => {
    const agent = await startAgent(b, { name: 'picky', tasks: ['only-this'] });
    const caller = await TestSocket.open(a);
    expect(await caller.request({ action: 'coordinator', id: 1, agent: 'nobody-home', task: 't' })).toMatchObject({
      ok: false,
      error: { code: 'AGENT_NOT_FOUND', retryable: false, dispatched: false },
    });
    expect(await caller.request({ action: 'coordinator', id: 2, agent: 'picky', task: 'other' })).toMatchObject({
      ok: false,
      error: { code: 'AGENT_NOT_FOUND' },
    });
    expect(await caller.request({ action: 'coordinator', id: 3, agent: 'picky', task: 'only-this' })).toMatchObject({
      ok: true,
    });
    await Promise.all([caller.close(), agent.close()]);
  });

  it('gives TIMEOUT at the deadline when the agent never answers, and tells the agent to stop', async () => {
    const agent = await startAgent(b, { name: 'silent', answer: () => undefined });
    const caller = await TestSocket.open(a);
    const response = await caller.request({ action: 'coordinator', id: 1, agent: 'silent', task: 't', timeoutMs: 300 });
    expect(response).toMatchObject({ ok: false, error: { code: 'TIMEOUT', retryable: true } });
    const cancel = await agent.socket.nextEvent('task.cancel');
    expect(cancel.taskId).toBe(agent.received[0]?.taskId);
    // A late answer is refused, not delivered to anyone.
    expect(
      await agent.socket.request({ action: 'task.result', id: 'late', taskId: cancel.taskId, output: 1 }),
    ).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
    await Promise.all([caller.close(), agent.close()]);
  });

  it('fails the caller fast when the agent disconnects mid-task', async () => {
    const agent = await startAgent(b, { name: 'flaky', answer: 'manual' });
    const caller = await TestSocket.open(a);
    caller.send({ action: 'coordinator', id: 1, agent: 'flaky', task: 't', timeoutMs: 30_000 });
    await agent.socket.nextEvent('task');
    await agent.socket.terminate();
    // With a 30 s deadline, only the disconnect can explain an answer within the wait below.
    const response = await caller.nextResponse((r) => r.id === 1, 10_000);
    expect(response).toMatchObject({ ok: false, error: { code: 'AGENT_UNAVAILABLE', retryable: true } });
    // The agent had the task: nothing tells a client it may send the call again.
    expect(response.error).not.toHaveProperty('dispatched');
    await caller.close();
  });

  it('reports the agent’s own error as AGENT_ERROR with its code', async () => {
    const agent = await startAgent(b, {
      name: 'grumpy',
      answer: (t) => ({
        action: 'task.error',
        taskId: t.taskId,
        error: { code: 'NO_DATA', message: 'nothing to do', retryable: false },
      }),
    });
    const caller = await TestSocket.open(a);
    expect(await caller.request({ action: 'coordinator', id: 1, agent: 'grumpy', task: 't' })).toEqual({
      id: 1,
      ok: false,
      error: { code: 'AGENT_ERROR', message: 'nothing to do', retryable: false, details: { agentCode: 'NO_DATA' } },
    });
    await Promise.all([caller.close(), agent.close()]);
  });

  it('answers task.get and task.cancel for an in-flight task from another replica', async () => {
    const agent = await startAgent(b, { name: 'slow', answer: 'manual' });
    const caller = await TestSocket.open(a);
    const other = await TestSocket.open(b);
    caller.send({ action: 'coordinator', id: 'long', agent: 'slow', task: 'think', timeoutMs: 30_000 });
    const task = await agent.socket.nextEvent('task');
    const record = await other.request({ action: 'task.get', id: 1, taskId: task.taskId });
    expect(record).toMatchObject({
      ok: true,
      result: { taskId: task.taskId, agent: 'slow', task: 'think', status: 'working' },
    });
    expect(await other.request({ action: 'task.cancel', id: 2, taskId: task.taskId })).toEqual({
      id: 2,
      ok: true,
      result: { taskId: task.taskId, status: 'canceled' },
    });
    // Answered once the origin has recorded it: a read on any replica sees the end at once.
    expect(await other.request({ action: 'task.get', id: 3, taskId: task.taskId })).toMatchObject({
      result: { status: 'canceled' },
    });
    expect(await caller.nextResponse((r) => r.id === 'long')).toMatchObject({ ok: false, error: { code: 'CANCELED' } });
    expect(await agent.socket.nextEvent('task.cancel')).toEqual({ event: 'task.cancel', taskId: task.taskId });
    expect(await other.request({ action: 'task.cancel', id: 4, taskId: task.taskId })).toMatchObject({
      error: { code: 'CONFLICT' },
    });
    expect(await other.request({ action: 'task.get', id: 5, taskId: 'no-such-task' })).toMatchObject({
      error: { code: 'NOT_FOUND' },
    });
    await Promise.all([caller.close(), other.close(), agent.close()]);
  });

  it('lists agents of every replica with their instances, capacity and load', async () => {
    const x1 = await startAgent(a, { name: 'lister', concurrency: 2, tasks: ['b', 'a'] });
    const x2 = await startAgent(b, { name: 'lister', concurrency: 3, tasks: ['c'] });
    const caller = await TestSocket.open(a);
    const list = await caller.request({ action: 'agents.list', id: 1 });
    const entry = (list.result as { name: string }[]).find((e) => e.name === 'lister');
    expect(entry).toEqual({
      name: 'lister',
      kind: 'ws',
      instances: 2,
      capacity: 5,
      inFlight: 0,
      tasks: ['a', 'b', 'c'],
    });
    await x2.close();
    let id = 1;
    await waitFor(
      async () => {
        const after = await caller.request({ action: 'agents.list', id: ++id });
        const listed = (after.result as { name: string; instances: number }[]).find((e) => e.name === 'lister');
        return listed?.instances === 1;
      },
      { what: 'the closed instance to leave the list', timeoutMs: 5_000 },
    );
    await Promise.all([caller.close(), x1.close()]);
  });

  it('runs a call with a repeated idempotencyKey once, on any replica', async () => {
    let n = 0;
    const agent = await startAgent(b, {
      name: 'once',
      answer: (t) =>
        (t.data as { fail?: boolean }).fail && n++ === 0
          ? { action: 'task.error', taskId: t.taskId, error: { message: 'first try fails' } }
          : { action: 'task.result', taskId: t.taskId, output: { run: agent.received.length } },
    });
    const onA = await TestSocket.open(a);
    const onB = await TestSocket.open(b);
    const first = await onA.request({
      action: 'coordinator',
      id: 1,
      agent: 'once',
      task: 't',
      data: {},
      idempotencyKey: 'k-1',
    });
    const again = await onB.request({
      action: 'coordinator',
      id: 2,
      agent: 'once',
      task: 't',
      data: {},
      idempotencyKey: 'k-1',
    });
    expect(again.result).toEqual(first.result);
    expect(agent.received).toHaveLength(1);
    // A failed call does not hold its key: the retry runs.
    expect(
      await onA.request({
        action: 'coordinator',
        id: 3,
        agent: 'once',
        task: 't',
        data: { fail: true },
        idempotencyKey: 'k-2',
      }),
    ).toMatchObject({
      error: { code: 'AGENT_ERROR' },
    });
    expect(
      await onA.request({
        action: 'coordinator',
        id: 4,
        agent: 'once',
        task: 't',
        data: { fail: true },
        idempotencyKey: 'k-2',
      }),
    ).toMatchObject({
      ok: true,
    });
    expect(agent.received).toHaveLength(3);
    await Promise.all([onA.close(), onB.close(), agent.close()]);
  });

  it('answers CONFLICT to a repeated idempotencyKey while the first call is in flight', async () => {
    const agent = await startAgent(b, { name: 'slow-once', answer: 'manual' });
    const caller = await TestSocket.open(a);
    caller.send({
      action: 'coordinator',
      id: 1,
      agent: 'slow-once',
      task: 't',
      idempotencyKey: 'k',
      timeoutMs: 30_000,
    });
    const task = await agent.socket.nextEvent('task');
    expect(
      await caller.request({ action: 'coordinator', id: 2, agent: 'slow-once', task: 't', idempotencyKey: 'k' }),
    ).toMatchObject({
      ok: false,
      error: { code: 'CONFLICT', retryable: true, details: { taskId: task.taskId } },
    });
    agent.socket.send({ action: 'task.result', taskId: task.taskId, output: 'done' });
    expect(await caller.nextResponse((r) => r.id === 1)).toMatchObject({ ok: true });
    expect(
      await caller.request({ action: 'coordinator', id: 3, agent: 'slow-once', task: 't', idempotencyKey: 'k' }),
    ).toMatchObject({
      ok: true,
      result: { taskId: task.taskId, output: 'done' },
    });
    await Promise.all([caller.close(), agent.close()]);
  });

  it('leaves no task held and no stale record behind after a burst of calls', async () => {
    const agent = await startAgent(b, { name: 'burst', concurrency: 64 });
    const caller = await TestSocket.open(a);
    const taskIds: string[] = [];
    let next = 0;
    // 64 in flight from one socket saturates this machine.
    const worker = async (): Promise<void> => {
      while (next < 2000) {
        const id = `b${next++}`;
        const r = await caller.request({ action: 'coordinator', id, agent: 'burst', task: 't' }, 30_000);
        expect(r.ok).toBe(true);
        taskIds.push((r.result as { taskId: string }).taskId);
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    // The holder writes its instances' counts about 100 ms after they change.
    let listed = 0;
    await waitFor(
      async () => {
        const list = await caller.request({ action: 'agents.list', id: `l${listed++}` });
        return (list.result as { name: string; inFlight: number }[]).find((x) => x.name === 'burst')?.inFlight === 0;
      },
      { what: 'no task held by the instance', timeoutMs: 2_000 },
    );
    // Read on a connection of its own: the burst spent most of the caller's request budget (2,000
    // at once, then 1,000 a second), and a refused read would look like a lost record.
    const reader = await TestSocket.open(a);
    const statuses = new Map<string, number>();
    for (const taskId of taskIds) {
      const record = await reader.request({ action: 'task.get', id: `g-${taskId}`, taskId });
      const status = record.ok
        ? String((record.result as { status?: string } | undefined)?.status)
        : `error ${record.error?.code}: ${record.error?.message}`;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ completed: 2000 });
    await Promise.all([caller.close(), reader.close(), agent.close()]);
  });
});
