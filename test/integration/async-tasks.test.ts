import { runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import { type Frame, TestSocket } from '../helpers/ws-client';

/** Reads `task.status` events for a task until one is terminal; returns all of them. */
async function statusesUntilEnd(socket: TestSocket, taskId: string, timeoutMs = 20_000): Promise<Frame[]> {
  const seen: Frame[] = [];
  const terminal = new Set(['completed', 'failed', 'canceled', 'rejected']);
  for (;;) {
    const event = await socket.nextFrame(
      (f) => f.event === 'task.status' && f.taskId === taskId,
      timeoutMs,
      `task.status of ${taskId}`,
    );
    seen.push(event);
    if (terminal.has(event.status as string)) return seen;
  }
}

describe('async tasks through the queue and workers', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, workers: 1, workerEnv: { OPENCLAW_WORKER_LOCK_MS: '2000' } });
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
    const statuses = await statusesUntilEnd(caller, taskId);
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
    const statuses = await statusesUntilEnd(caller, taskId);
    expect(statuses.at(-1)).toMatchObject({
      status: 'failed',
      error: { code: 'AGENT_ERROR', message: 'busy 3' },
      attempt: 3,
    });
    expect(agent.received.map((t) => t.attempt)).toEqual([1, 2, 3]);
    const list = await runCli(['task', 'list', '--status', 'failed', '--json', '--url', a!.httpUrl]);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { taskId: string }[]).map((t) => t.taskId)).toContain(taskId);
    const show = await runCli(['task', 'show', taskId, '--url', a!.httpUrl]);
    expect(show.stdout).toContain('status    failed');
    expect(show.stdout).toContain('attempts  3 of 3');
    const retry = await runCli(['task', 'retry', taskId, '--url', a!.httpUrl]);
    expect(retry.code).toBe(0);
    const again = await statusesUntilEnd(caller, taskId);
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
    const statuses = await statusesUntilEnd(caller, taskId);
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
});
