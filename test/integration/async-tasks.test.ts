import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { taskStatuses } from '../helpers/tasks';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

describe('async tasks through the queue and workers', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      workers: 1,
      // The HTTP agent of these tests listens on loopback.
      workerEnv: { OPENCLAW_WORKER_LOCK_MS: '2000', OPENCLAW_WORKER_HTTP_AGENTS_ALLOW_PRIVATE: 'true' },
    });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('answers submitted at once, runs the task on an agent on another replica, and reports status events', async () => {
    const [a, b] = cluster.gateways;
    const agent = await startAgent(b!.url, { name: 'async-echo' });
    const caller = await TestSocket.open(a!.url);
    const reply = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'async-echo',
      task: 't',
      data: { n: 1 },
      mode: 'async',
    });
    expect(reply).toMatchObject({ ok: true, result: { status: 'submitted' } });
    const taskId = (reply.result as { taskId: string }).taskId;
    const statuses = await taskStatuses(caller, taskId);
    expect(statuses.map((s) => s.status)).toEqual(['submitted', 'working', 'completed']);
    expect(statuses[2]).toMatchObject({ output: { echo: { n: 1 }, by: 'async-echo' }, attempt: 1 });
    expect(typeof statuses[2]!.cursor).toBe('string');
    expect(agent.received[0]).toMatchObject({ taskId, attempt: 1, data: { n: 1 } });
    const got = await caller.request({ action: 'task.get', id: 2, taskId });
    expect(got.result).toMatchObject({
      taskId,
      status: 'completed',
      mode: 'async',
      attempts: 1,
      output: { echo: { n: 1 } },
    });
    // From the other replica too.
    const other = await TestSocket.open(b!.url);
    expect((await other.request({ action: 'task.get', id: 3, taskId })).result).toMatchObject({ status: 'completed' });
    await Promise.all([caller.close(), other.close(), agent.close()]);
  });

  it('retries retryable failures with backoff, then dead-letters the task: listed, shown and retried by the CLI', async () => {
    const [a] = cluster.gateways;
    let calls = 0;
    const agent = await startAgent(a!.url, {
      name: 'flaky',
      answer: (t) => {
        calls += 1;
        return {
          action: 'task.error',
          taskId: t.taskId,
          error: { code: 'BUSY', message: `busy ${calls}`, retryable: true },
        };
      },
    });
    const caller = await TestSocket.open(a!.url);
    const reply = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'flaky',
      task: 't',
      mode: 'async',
      retry: { attempts: 3, backoffMs: 50 },
    });
    const taskId = (reply.result as { taskId: string }).taskId;
    const statuses = await taskStatuses(caller, taskId);
    expect(statuses.at(-1)).toMatchObject({
      status: 'failed',
      error: { code: 'AGENT_ERROR', message: 'busy 3' },
      attempt: 3,
    });
    expect(agent.received.map((t) => t.attempt)).toEqual([1, 2, 3]);
    const list = await runCli(['task', 'list', '--status', 'failed', '--json', '--url', a!.httpUrl]);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { taskId: string }[]).map((t) => t.taskId)).toContain(taskId);
    const show = await runCli(['task', 'show', taskId, '--events', '--url', a!.httpUrl]);
    expect(show.stdout).toContain('status    failed');
    expect(show.stdout).toContain('attempts  3 of 3');
    // The history: each attempt, the error that made it retry, the end.
    expect(show.stdout).toMatch(/submitted\n.*working {2}attempt 1\n.*submitted {2}attempt 1 {2}AGENT_ERROR: busy 1\n/);
    expect(show.stdout).toMatch(/failed {2}attempt 3 {2}AGENT_ERROR: busy 3/);
    const retry = await runCli(['task', 'retry', taskId, '--url', a!.httpUrl]);
    expect(retry.code).toBe(0);
    const again = await taskStatuses(caller, taskId);
    expect(again[0]).toMatchObject({ status: 'submitted' });
    expect(again.at(-1)).toMatchObject({ status: 'failed' });
    expect(agent.received.map((t) => t.attempt)).toEqual([1, 2, 3, 1, 2, 3]);
    await Promise.all([caller.close(), agent.close()]);
  });

  it('fails a non-retryable error at once', async () => {
    const [a] = cluster.gateways;
    const agent = await startAgent(a!.url, {
      name: 'refuser',
      answer: (t) => ({
        action: 'task.error',
        taskId: t.taskId,
        error: { code: 'NO', message: 'never', retryable: false },
      }),
    });
    const caller = await TestSocket.open(a!.url);
    const reply = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'refuser',
      task: 't',
      mode: 'async',
      retry: { attempts: 5, backoffMs: 10 },
    });
    const taskId = (reply.result as { taskId: string }).taskId;
    const statuses = await taskStatuses(caller, taskId);
    expect(statuses.at(-1)).toMatchObject({ status: 'failed', error: { code: 'AGENT_ERROR' } });
    expect(agent.received).toHaveLength(1);
    await Promise.all([caller.close(), agent.close()]);
  });

  it('returns the original task for a repeated idempotency key, from any replica', async () => {
    const [a, b] = cluster.gateways;
    const agent = await startAgent(a!.url, { name: 'idem' });
    const one = await TestSocket.open(a!.url);
    const two = await TestSocket.open(b!.url);
    const params = { action: 'coordinator', agent: 'idem', task: 't', mode: 'async', idempotencyKey: 'order-42' };
    const first = await one.request({ ...params, id: 1 });
    const second = await two.request({ ...params, id: 2 });
    expect((second.result as { taskId: string }).taskId).toBe((first.result as { taskId: string }).taskId);
    await waitFor(
      async () =>
        (
          (await one.request({ action: 'task.get', id: 3, taskId: (first.result as { taskId: string }).taskId }))
            .result as { status: string }
        ).status === 'completed',
      { what: 'completion' },
    );
    const third = await two.request({ ...params, id: 4 });
    expect(third.result).toMatchObject({ taskId: (first.result as { taskId: string }).taskId, status: 'completed' });
    expect(agent.received).toHaveLength(1);
    await Promise.all([one.close(), two.close(), agent.close()]);
  });

  it('sends the submitter its events on the replica it reconnected to, with progress, without asking', async () => {
    const [a, b] = cluster.gateways;
    const agent = await startAgent(b!.url, { name: 'reporter-x', answer: 'manual' });
    const first = await TestSocket.open(a!.url);
    const reply = await first.request({ action: 'coordinator', id: 1, agent: 'reporter-x', task: 't', mode: 'async' });
    const taskId = (reply.result as { taskId: string }).taskId;
    const task = await agent.socket.nextEvent('task', 10_000);
    await first.close();
    const second = await TestSocket.open(b!.url);
    await second.request({ action: 'ping', id: 1 });
    agent.socket.send({ action: 'task.progress', taskId: task.taskId, progress: { pct: 50 } });
    const progress = await second.nextEvent('task.progress', 10_000);
    expect(progress).toMatchObject({ taskId, progress: { pct: 50 } });
    expect(typeof progress.cursor).toBe('string');
    agent.socket.send({ action: 'task.result', taskId: task.taskId, output: 'done' });
    const end = await taskStatuses(second, taskId);
    expect(end.at(-1)).toMatchObject({ status: 'completed', output: 'done' });
    await Promise.all([second.close(), agent.close()]);
  });

  it('retries an attempt that times out: the agent is told to stop, then sees attempt 2', async () => {
    const [a] = cluster.gateways;
    const agent = await startAgent(a!.url, { name: 'sleepy', answer: 'manual', concurrency: 4 });
    const caller = await TestSocket.open(a!.url);
    const reply = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'sleepy',
      task: 't',
      mode: 'async',
      timeoutMs: 300,
      retry: { attempts: 2, backoffMs: 10 },
    });
    const taskId = (reply.result as { taskId: string }).taskId;
    expect(await agent.socket.nextEvent('task', 10_000)).toMatchObject({ taskId, attempt: 1 });
    // The deadline passes: the agent is told to stop, then gets the next attempt.
    await agent.socket.nextEvent('task.cancel', 10_000);
    const second = await agent.socket.nextEvent('task', 10_000);
    expect(second).toMatchObject({ taskId, attempt: 2 });
    agent.socket.send({ action: 'task.result', taskId, output: 'late but fine' });
    expect((await taskStatuses(caller, taskId)).at(-1)).toMatchObject({ status: 'completed', attempt: 2 });
    await Promise.all([caller.close(), agent.close()]);
  });

  it("uses an agent's registered retry policy when the call gives none", async () => {
    const [a] = cluster.gateways;
    const socket = await TestSocket.open(a!.url);
    const reg = await socket.request({ action: 'register', id: 'r', name: 'once-only', retry: { attempts: 1 } });
    expect(reg.ok).toBe(true);
    const caller = await TestSocket.open(a!.url);
    const reply = await caller.request({ action: 'coordinator', id: 1, agent: 'once-only', task: 't', mode: 'async' });
    const taskId = (reply.result as { taskId: string }).taskId;
    const task = await socket.nextEvent('task', 10_000);
    socket.send({ action: 'task.error', taskId: task.taskId, error: { message: 'flaky', retryable: true } });
    expect((await taskStatuses(caller, taskId)).at(-1)).toMatchObject({ status: 'failed', attempt: 1 });
    const record = await caller.request({ action: 'task.get', id: 2, taskId });
    expect(record.result).toMatchObject({ attempts: 1, maxAttempts: 1 });
    await Promise.all([caller.close(), socket.close()]);
  });

  it('cancels a running async task (the agent is told) and a queued one (removed at once)', async () => {
    const [a, b] = cluster.gateways;
    const agent = await startAgent(a!.url, { name: 'cancelable', answer: 'manual' });
    const caller = await TestSocket.open(b!.url);
    const running = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'cancelable',
      task: 't',
      mode: 'async',
      timeoutMs: 60_000,
    });
    const runningId = (running.result as { taskId: string }).taskId;
    await agent.socket.nextEvent('task', 10_000);
    expect(await caller.request({ action: 'task.cancel', id: 2, taskId: runningId }, 10_000)).toMatchObject({
      ok: true,
      result: { status: 'canceled' },
    });
    expect(await agent.socket.nextEvent('task.cancel', 10_000)).toMatchObject({ taskId: runningId });
    expect((await taskStatuses(caller, runningId)).at(-1)).toMatchObject({
      status: 'canceled',
      error: { code: 'CANCELED' },
    });
    // Queued: the agent does not exist yet, so the task waits for its next attempt (backoff).
    const queued = await caller.request({
      action: 'coordinator',
      id: 3,
      agent: 'nobody-yet',
      task: 't',
      mode: 'async',
      retry: { attempts: 5, backoffMs: 60_000 },
    });
    const queuedId = (queued.result as { taskId: string }).taskId;
    await caller.nextFrame(
      (f) => f.taskId === queuedId && f.lastError !== undefined,
      10_000,
      'the first failed attempt',
    );
    expect(await caller.request({ action: 'task.cancel', id: 4, taskId: queuedId })).toMatchObject({ ok: true });
    expect((await taskStatuses(caller, queuedId)).at(-1)).toMatchObject({ status: 'canceled' });
    // Cancel, respond and retry on tasks in the wrong state say why.
    const again = await caller.request({ action: 'task.cancel', id: 5, taskId: queuedId });
    expect(again).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
    expect(await caller.request({ action: 'task.respond', id: 6, taskId: queuedId, output: 1 })).toMatchObject({
      ok: false,
      error: { code: 'CONFLICT' },
    });
    expect(await caller.request({ action: 'task.get', id: 7, taskId: 'no-such-task' })).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
    const badList = await fetch(`${a!.httpUrl}/v1/tasks?status=lost`);
    expect(badList.status).toBe(400);
    await Promise.all([caller.close(), agent.close()]);
  });

  it('runs a task retried the moment its cancel is confirmed (its worker may still hold the old job)', async () => {
    const [a, b] = cluster.gateways;
    const agent = await startAgent(a!.url, { name: 'quick-retry', answer: 'manual' });
    const caller = await TestSocket.open(b!.url);
    for (let round = 0; round < 8; round++) {
      const submitted = await caller.request({
        action: 'coordinator',
        id: 1,
        agent: 'quick-retry',
        task: 't',
        mode: 'async',
      });
      const taskId = (submitted.result as { taskId: string }).taskId;
      await agent.socket.nextFrame((f) => f.event === 'task' && f.taskId === taskId, 10_000, `round ${round}: task`);
      // Retry as soon as the ledger says canceled: the worker that ran the attempt may not have let go
      // of its job yet.
      const canceled = caller.request({ action: 'task.cancel', id: `c${round}`, taskId }, 10_000);
      for (let i = 0; ; i++) {
        const retried = await caller.request({ action: 'task.retry', id: `r${round}.${i}`, taskId }, 10_000);
        if (retried.ok === true) break;
        expect(retried).toMatchObject({ error: { code: 'CONFLICT' } });
      }
      const again = await agent.socket.nextFrame(
        (f) => f.event === 'task' && f.taskId === taskId,
        10_000,
        `round ${round}: the retried task`,
      );
      expect(again).toMatchObject({ attempt: 1 });
      expect(await canceled).toMatchObject({ ok: true });
      agent.socket.send({ action: 'task.result', taskId, output: { round } });
      const done = await caller.nextFrame(
        (f) => f.event === 'task.status' && f.taskId === taskId && f.status === 'completed',
        10_000,
        `round ${round}: completed`,
      );
      expect(done).toMatchObject({ output: { round } });
    }
    await Promise.all([caller.close(), agent.close()]);
  });

  it('runs async tasks on an HTTP agent from the worker, retrying a 503 and passing the attempt', async () => {
    const [a] = cluster.gateways;
    const seen: { attempt: number; taskId: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        const task = JSON.parse(body) as { attempt: number; taskId: string; data: unknown };
        seen.push({ attempt: task.attempt, taskId: task.taskId });
        if (task.attempt === 1) {
          res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"warming up"}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ stored: task.data }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const registered = await runCli([
        'agent',
        'register',
        '--name',
        'archive',
        '--url',
        `http://127.0.0.1:${port}/task`,
        '--gateway',
        a!.httpUrl,
      ]);
      expect(registered.code).toBe(0);
      const caller = await TestSocket.open(a!.url);
      const reply = await caller.request({
        action: 'coordinator',
        id: 1,
        agent: 'archive',
        task: 'store',
        data: { doc: 7 },
        mode: 'async',
        retry: { attempts: 3, backoffMs: 20 },
      });
      const taskId = (reply.result as { taskId: string }).taskId;
      expect((await taskStatuses(caller, taskId)).at(-1)).toMatchObject({
        status: 'completed',
        output: { stored: { doc: 7 } },
        attempt: 2,
      });
      expect(seen).toEqual([
        { attempt: 1, taskId },
        { attempt: 2, taskId },
      ]);
      await caller.close();
    } finally {
      server.close();
    }
  });
});
