import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

describe('task.subscribe', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('reports the end of a task running on another replica', async () => {
    const [a, b] = [cluster.gateways[0]!, cluster.gateways[1]!];
    const agent = await startAgent(b.url, { name: 'watched', answer: 'manual' });
    const caller = await TestSocket.open(a.url);
    caller.send({ action: 'coordinator', id: 'w', agent: 'watched', task: 't', timeoutMs: 30_000 });
    const task = await agent.socket.nextEvent('task');
    const watcher = await TestSocket.open(b.url);
    expect(await watcher.request({ action: 'task.subscribe', id: 1, taskId: task.taskId })).toEqual({
      id: 1,
      ok: true,
      result: { taskId: task.taskId, status: 'working' },
    });
    agent.socket.send({ action: 'task.result', taskId: task.taskId, output: { done: true } });
    expect(await watcher.nextEvent('task.status')).toEqual({
      event: 'task.status',
      taskId: task.taskId,
      status: 'completed',
      output: { done: true },
    });
    expect(await caller.nextResponse((r) => r.id === 'w')).toMatchObject({ ok: true });
    expect(await watcher.request({ action: 'task.subscribe', id: 2, taskId: 'unknown' })).toMatchObject({
      error: { code: 'NOT_FOUND' },
    });
    await Promise.all([caller.close(), watcher.close(), agent.close()]);
  });
});

describe('drain on SIGTERM', () => {
  it('lets an in-flight call finish, then closes sockets with 1001', async () => {
    const cluster = await startCluster({ replicas: 2 });
    const [a, b] = [cluster.gateways[0]!, cluster.gateways[1]!];
    const agent = await startAgent(b.url, { name: 'finisher', answer: 'manual' });
    const caller = await TestSocket.open(a.url);
    caller.send({ action: 'coordinator', id: 'drain', agent: 'finisher', task: 't', timeoutMs: 30_000 });
    const task = await agent.socket.nextEvent('task');
    const stopped = a.stop('SIGTERM');
    // Draining: readiness fails first, so a load balancer stops sending new connections here.
    await waitFor(async () => (await fetch(`${a.httpUrl}/readyz`)).status === 503, {
      what: 'readiness to fail while draining',
      timeoutMs: 3_000,
      intervalMs: 20,
    });
    agent.socket.send({ action: 'task.result', taskId: task.taskId, output: 'finished during drain' });
    expect(await caller.nextResponse((r) => r.id === 'drain')).toMatchObject({
      ok: true,
      result: { output: 'finished during drain' },
    });
    expect((await caller.closed).code).toBe(1001);
    expect(await stopped).toEqual({ code: 0, signal: null });
    await agent.close();
    await cluster.stop();
  });
});

describe('drain of a replica holding agents', () => {
  it('stops routing to its agents at once and lets them finish the tasks they hold', async () => {
    const cluster = await startCluster({ replicas: 2 });
    const [a, b] = [cluster.gateways[0]!, cluster.gateways[1]!];
    // Holds the task whose data is 'hold'; answers any other at once (calls that raced the SIGTERM).
    const agent = await startAgent(b.url, {
      name: 'worker',
      concurrency: 4,
      answer: (t) => (t.data === 'hold' ? undefined : { action: 'task.result', taskId: t.taskId, output: 'quick' }),
    });
    const caller = await TestSocket.open(a.url);
    caller.send({ action: 'coordinator', id: 'held', agent: 'worker', task: 't', data: 'hold', timeoutMs: 30_000 });
    await waitFor(() => agent.received.length === 1, { what: 'the held task to reach the agent' });
    const task = agent.received[0]!;
    const stopped = b.stop('SIGTERM');
    // Withdrawn from routing while its replica drains: a new call is not sent to it, and is told the
    // agent is moving (retryable, never dispatched), not that it does not exist.
    let i = 0;
    const error = await waitFor(
      async () => {
        const r = await caller.request({
          action: 'coordinator',
          id: `new-${i++}`,
          agent: 'worker',
          task: 't',
          timeoutMs: 30_000,
        });
        if ((r.error as { code?: unknown } | undefined)?.code === 'AGENT_UNAVAILABLE') return r.error;
        throw new Error(`a new call got ${JSON.stringify(r)}`);
      },
      { what: 'new calls to be refused with AGENT_UNAVAILABLE', timeoutMs: 3_000, intervalMs: 20 },
    );
    expect(error).toMatchObject({
      code: 'AGENT_UNAVAILABLE',
      retryable: true,
      dispatched: false,
      message: "agent 'worker' is moving to another replica (its replica is draining); retry shortly",
    });
    agent.socket.send({ action: 'task.result', taskId: task.taskId, output: 'done while draining' });
    expect(await caller.nextResponse((r) => r.id === 'held')).toMatchObject({
      ok: true,
      result: { output: 'done while draining' },
    });
    expect((await agent.socket.closed).code).toBe(1001);
    expect(await stopped).toEqual({ code: 0, signal: null });
    await caller.close();
    await cluster.stop();
  });
});
