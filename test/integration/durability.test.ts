import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { submitAsync, taskEnd } from '../helpers/tasks';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

/** Async tasks survive the loss of a worker, of the submitter's replica, and a Redis restart (AOF). */
describe('durability of async tasks', () => {
  let cluster: Cluster | undefined;

  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('resumes a task on another worker when its worker is killed mid-task; the agent sees attempt 2', async () => {
    cluster = await startCluster({
      replicas: 1,
      workers: 1,
      appendOnly: true,
      workerEnv: { OPENCLAW_WORKER_LOCK_MS: '2000' },
    });
    const [a] = cluster.gateways;
    const agent = await startAgent(a!.url, { name: 'durable', answer: 'manual' });
    const caller = await TestSocket.open(a!.url);
    const taskId = await submitAsync(caller, { agent: 'durable', task: 'work', data: { order: 1 }, timeoutMs: 60_000 });
    const first = await agent.socket.nextEvent('task', 15_000);
    expect(first).toMatchObject({ taskId, attempt: 1 });
    await cluster.workers[0]!.kill();
    await cluster.addWorker('W2');
    const second = await agent.socket.nextEvent('task', 20_000);
    expect(second).toMatchObject({ taskId, attempt: 2, data: { order: 1 } });
    agent.socket.send({ action: 'task.result', taskId, output: { done: true } });
    expect(await taskEnd(caller, taskId)).toMatchObject({ status: 'completed', output: { done: true }, attempt: 2 });
    await Promise.all([caller.close(), agent.close()]);
  });

  it('completes a workflow whose worker is killed (kill -9) in the middle of a step', async () => {
    cluster = await startCluster({
      replicas: 2,
      workers: 1,
      appendOnly: true,
      workerEnv: { OPENCLAW_WORKER_LOCK_MS: '2000' },
    });
    const [a, b] = cluster.gateways;
    const fetcher = await startAgent(a!.url, { name: 'fetcher' });
    const cleaner = await startAgent(b!.url, { name: 'cleaner', answer: 'manual' });
    const reporter = await startAgent(a!.url, { name: 'reporter' });
    const caller = await TestSocket.open(b!.url);
    const started = await caller.request({
      action: 'workflow.start',
      id: 'wf',
      workflow: {
        name: 'pipeline',
        steps: [
          { id: 'fetch', agent: 'fetcher', task: 'fetch' },
          { id: 'clean', agent: 'cleaner', task: 'clean' },
          { id: 'report', agent: 'reporter', task: 'report' },
        ],
      },
      input: { rows: 3 },
    });
    const workflowId = (started.result as { taskId: string }).taskId;
    // The second step is running on the only worker: it dies without a word.
    const first = await cleaner.socket.nextEvent('task', 20_000);
    expect(first).toMatchObject({ attempt: 1 });
    await cluster.workers[0]!.kill();
    await cluster.addWorker('W2');
    // The new worker takes the step back (its lock expired) and the workflow goes on from there.
    const again = await cleaner.socket.nextEvent('task', 20_000);
    expect(again).toMatchObject({ taskId: first.taskId, attempt: 2, data: first.data });
    cleaner.socket.send({ action: 'task.result', taskId: again.taskId, output: { cleaned: true } });
    const end = await taskEnd(caller, workflowId, 30_000);
    expect(end).toMatchObject({ status: 'completed' });
    // The first step ran once; the last one got the second step's output.
    expect(fetcher.received).toHaveLength(1);
    expect(reporter.received).toHaveLength(1);
    expect(reporter.received[0]!.data).toEqual({ cleaned: true });
    await Promise.all([caller.close(), fetcher.close(), cleaner.close(), reporter.close()]);
  });

  it('delivers the result to a submitter whose replica was killed, after it reconnects to another', async () => {
    cluster = await startCluster({ replicas: 2, workers: 1, workerEnv: { OPENCLAW_WORKER_LOCK_MS: '2000' } });
    const [a, b] = cluster.gateways;
    const agent = await startAgent(b!.url, { name: 'steady', answer: 'manual' });
    const caller = await TestSocket.open(a!.url);
    const taskId = await submitAsync(caller, { agent: 'steady', task: 'work', timeoutMs: 60_000 });
    const submitted = await caller.nextFrame(
      (f) => f.event === 'task.status' && f.taskId === taskId,
      10_000,
      'the submitted event',
    );
    const task = await agent.socket.nextEvent('task', 15_000);
    await a!.kill();
    await caller.terminate().catch(() => undefined);
    agent.socket.send({ action: 'task.result', taskId: task.taskId, output: 'shipped' });
    // Reconnect elsewhere and pick up after the last event seen.
    const again = await TestSocket.open(b!.url);
    const reply = await again.request({ action: 'task.subscribe', id: 1, taskId, after: submitted.cursor });
    expect(reply.ok).toBe(true);
    expect(await taskEnd(again, taskId)).toMatchObject({ status: 'completed', output: 'shipped' });
    await Promise.all([again.close(), agent.close()]);
  });

  it('keeps queued tasks across a Redis restart (AOF) and runs them once a worker is back', async () => {
    cluster = await startCluster({
      replicas: 1,
      workers: 0,
      appendOnly: true,
      workerEnv: { OPENCLAW_WORKER_LOCK_MS: '2000' },
    });
    const [a] = cluster.gateways;
    const caller = await TestSocket.open(a!.url);
    const ids = [
      await submitAsync(caller, { agent: 'late', task: 'work', data: 1 }),
      await submitAsync(caller, { agent: 'late', task: 'work', data: 2 }),
      await submitAsync(caller, { agent: 'late', task: 'work', data: 3, idempotencyKey: 'order-3' }),
    ];
    await caller.close();
    await cluster.redis.kill();
    await cluster.redis.restart();
    // The replica reconnects by itself.
    await waitFor(async () => (await fetch(`${a!.httpUrl}/readyz`)).status === 200, {
      what: 'the replica ready again',
      timeoutMs: 15_000,
    });
    const agent = await startAgent(a!.url, { name: 'late' });
    const watcher = await TestSocket.open(a!.url);
    // The idempotency key survived too: a repeat is the same task, not a fourth one.
    expect(await submitAsync(watcher, { agent: 'late', task: 'work', data: 3, idempotencyKey: 'order-3' })).toBe(
      ids[2],
    );
    await cluster.addWorker('W1');
    for (const taskId of ids) {
      const reply = await watcher.request({ action: 'task.subscribe', id: taskId, taskId, after: '0-0' });
      expect(reply.ok).toBe(true);
    }
    const ends = await Promise.all(ids.map((taskId) => taskEnd(watcher, taskId)));
    expect(ends.map((e) => e.status)).toEqual(['completed', 'completed', 'completed']);
    expect(agent.received.map((t) => t.data).sort()).toEqual([1, 2, 3]);
    await Promise.all([watcher.close(), agent.close()]);
  });
});

/** A TCP forwarder standing in for a load balancer: new connections go to whichever upstream is set now. */
async function startForwarder(
  upstreamPort: number,
): Promise<{ url: string; setUpstream(port: number): void; close(): Promise<void> }> {
  const net = await import('node:net');
  let upstream = upstreamPort;
  const sockets = new Set<import('node:net').Socket>();
  const server = net.createServer((client) => {
    const target = net.connect(upstream, '127.0.0.1');
    for (const s of [client, target]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(target);
    target.pipe(client);
    client.on('close', () => target.destroy());
    target.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as import('node:net').AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    setUpstream(p) {
      upstream = p;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('the SDK follows an async task across the loss of its replica', () => {
  it('waitForTask resolves after the client reconnected to another replica, with no event lost', async () => {
    const { connect } = await import('@openclaw/sdk');
    const cluster = await startCluster({ replicas: 2, workers: 1, workerEnv: { OPENCLAW_WORKER_LOCK_MS: '2000' } });
    const [a, b] = cluster.gateways;
    const lb = await startForwarder(a!.port);
    const agentClient = await connect({ url: b!.url });
    const client = await connect({ url: lb.url, reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
    client.on('error', () => undefined);
    try {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const agent = agentClient.agent('packer');
      agent.handle('pack', async (data, ctx) => {
        ctx.progress({ stage: 'started' });
        await gate;
        ctx.progress({ stage: 'sealed' });
        return { packed: data };
      });
      await agent.register();
      const { taskId } = await client.submit('packer', 'pack', { box: 1 });
      const progress: unknown[] = [];
      const outcome = client.waitForTask(taskId, { onProgress: (p) => progress.push(p) });
      await waitFor(() => progress.length === 1, { what: 'the first progress' });
      lb.setUpstream(b!.port);
      await a!.kill();
      await waitFor(() => client.connectionState === 'connected' && client.session?.replica === 'B', {
        what: 'the client reconnected to replica B',
        timeoutMs: 15_000,
      });
      release();
      await expect(outcome).resolves.toEqual({ taskId, status: 'completed', output: { packed: { box: 1 } } });
      expect(progress).toEqual([{ stage: 'started' }, { stage: 'sealed' }]);
    } finally {
      await Promise.all([client.close(), agentClient.close()]);
      await lb.close();
      await cluster.stop();
    }
  });
});
