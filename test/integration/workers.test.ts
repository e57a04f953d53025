import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { taskEnd, taskStatuses } from '../helpers/tasks';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

/** Workers stop gracefully: running attempts finish within the drain deadline, or go back to the queue. */
describe('worker shutdown', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1, workers: 0 });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('lets a running attempt finish within the drain deadline, then exits 0', async () => {
    const worker = await cluster.addWorker('drain-ok', { OPENCLAW_WORKER_DRAIN_MS: '20000' });
    const [a] = cluster.gateways;
    const agent = await startAgent(a!.url, { name: 'finisher', answer: 'manual' });
    const caller = await TestSocket.open(a!.url);
    const reply = await caller.request({ action: 'coordinator', id: 1, agent: 'finisher', task: 't', mode: 'async' });
    const taskId = (reply.result as { taskId: string }).taskId;
    await agent.socket.nextEvent('task', 10_000);
    const stopped = worker.stop('SIGTERM', 30_000);
    await worker.waitForLog((r) => r.msg === 'stopping: draining running tasks', { what: 'the drain to start' });
    agent.socket.send({ action: 'task.result', taskId, output: 'finished while draining' });
    expect(await stopped).toEqual({ code: 0, signal: null });
    expect(await taskEnd(caller, taskId)).toMatchObject({
      status: 'completed',
      output: 'finished while draining',
      attempt: 1,
    });
    await Promise.all([caller.close(), agent.close()]);
  });

  it('hands a task still running at the deadline back to the queue: the agent is told, another worker runs attempt 2', async () => {
    const worker = await cluster.addWorker('drain-short', { OPENCLAW_WORKER_DRAIN_MS: '300' });
    const [a] = cluster.gateways;
    const agent = await startAgent(a!.url, { name: 'long-haul', answer: 'manual' });
    const caller = await TestSocket.open(a!.url);
    const reply = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'long-haul',
      task: 't',
      mode: 'async',
      timeoutMs: 60_000,
    });
    const taskId = (reply.result as { taskId: string }).taskId;
    expect(await agent.socket.nextEvent('task', 10_000)).toMatchObject({ attempt: 1 });
    expect(await worker.stop('SIGTERM', 30_000)).toEqual({ code: 0, signal: null });
    expect(await agent.socket.nextEvent('task.cancel', 10_000)).toMatchObject({ taskId });
    await cluster.addWorker('taker');
    expect(await agent.socket.nextEvent('task', 15_000)).toMatchObject({ taskId, attempt: 2 });
    agent.socket.send({ action: 'task.result', taskId, output: 'second time' });
    expect(await taskEnd(caller, taskId)).toMatchObject({ status: 'completed', attempt: 2 });
    await Promise.all([caller.close(), agent.close()]);
  });

  it('hands back an attempt still being judged at the deadline: it never reaches the agent from the stopping worker', async () => {
    // A custom validator that takes 3 s over tasks marked SLOW (a slow judge, simulated): the attempt
    // is in admission when the 300 ms drain ends.
    const dir = mkdtempSync(path.join(tmpdir(), 'openclaw-validators-'));
    const module = path.join(dir, 'slow.js');
    writeFileSync(
      module,
      `module.exports = { name: 'slow', tier: 1, timeoutMs: 10000, check: async (m) => {
        if (JSON.stringify(m.data).includes('SLOW')) await new Promise((r) => setTimeout(r, 3000));
        return { decision: 'allow' };
      } };\n`,
    );
    // No other worker may take the job: stop those the tests before started.
    await Promise.all(cluster.workers.filter((w) => w.isRunning).map((w) => w.stop('SIGTERM', 30_000)));
    const worker = await cluster.addWorker('drain-judging', {
      OPENCLAW_WORKER_DRAIN_MS: '300',
      OPENCLAW_VALIDATORS: module,
    });
    const [a] = cluster.gateways;
    const agent = await startAgent(a!.url, { name: 'judged', answer: 'manual' });
    const caller = await TestSocket.open(a!.url);
    const reply = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'judged',
      task: 't',
      data: 'SLOW',
      mode: 'async',
      timeoutMs: 60_000,
    });
    const taskId = (reply.result as { taskId: string }).taskId;
    // Attempt 1 has started (its validator now takes 3 s) when the worker is told to stop.
    await caller.nextFrame(
      (f) => f.event === 'task.status' && f.taskId === taskId && f.status === 'working',
      15_000,
      'attempt 1 to start',
    );
    const stoppedAt = Date.now();
    // It exits once the judging is over (3 s), not at the task's deadline (60 s).
    expect(await worker.stop('SIGTERM', 30_000)).toEqual({ code: 0, signal: null });
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
    // Handed back, not stalled: another worker (without the slow validator) runs it at once. The
    // first task the agent sees is that worker's attempt 2: attempt 1 never left the stopping one.
    const takenAt = Date.now();
    await cluster.addWorker('taker-2');
    expect(await agent.socket.nextEvent('task', 15_000)).toMatchObject({ taskId, attempt: 2 });
    expect(Date.now() - takenAt).toBeLessThan(10_000);
    agent.socket.send({ action: 'task.result', taskId, output: 'judged and done' });
    expect(await taskEnd(caller, taskId)).toMatchObject({ status: 'completed', output: 'judged and done' });
    await expect(agent.socket.nextEvent('task', 500)).rejects.toThrow();
    await Promise.all([caller.close(), agent.close()]);
  });
});

/**
 * A worker that lost its job's lock (frozen past the lock: a long pause, or Redis away longer than
 * the lock) and comes back cannot decide the task: another worker took the job over and runs the
 * next attempt, whose outcome is the task's.
 */
describe('a worker back from a long pause', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 1,
      workers: 0,
      workerEnv: { OPENCLAW_WORKER_LOCK_MS: '2000', OPENCLAW_WORKER_HTTP_AGENTS_ALLOW_PRIVATE: 'true' },
    });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('has its late answer to attempt 1 dropped: attempt 2, run elsewhere meanwhile, decides the task', async () => {
    const [a] = cluster.gateways;
    // An HTTP agent: attempt 1 fails (400) after 9 s; any later attempt succeeds after 6 s, so after
    // attempt 1's failure has come back to its frozen worker.
    const attempts: number[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        const { attempt } = JSON.parse(body) as { attempt: number };
        attempts.push(attempt);
        if (attempt === 1) setTimeout(() => res.writeHead(400).end('{"error":"stale"}'), 9_000);
        else setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":"fresh"}'), 6_000);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/t`;
      const registered = await runCli(['agent', 'register', '--name', 'paused', '--url', url, '--gateway', a!.httpUrl]);
      expect(registered.code).toBe(0);
      const first = await cluster.addWorker('W1');
      const caller = await TestSocket.open(a!.url);
      const reply = await caller.request({
        action: 'coordinator',
        id: 1,
        agent: 'paused',
        task: 't',
        mode: 'async',
        timeoutMs: 30_000,
        retry: { attempts: 3, backoffMs: 20 },
      });
      const taskId = (reply.result as { taskId: string }).taskId;
      await waitFor(() => attempts.length === 1, { what: 'attempt 1 at the agent' });
      await cluster.addWorker('W2');
      process.kill(first.pid, 'SIGSTOP');
      // W1 stays frozen until its 2 s lock has run out and W2, having taken the job over, runs attempt 2.
      try {
        await waitFor(() => attempts.length === 2, { what: 'attempt 2 at the agent, from W2', timeoutMs: 20_000 });
      } finally {
        process.kill(first.pid, 'SIGCONT');
      }

      const statuses = await taskStatuses(caller, taskId, 40_000);
      expect(statuses.map((s) => [s.status, s.attempt])).toEqual([
        ['submitted', undefined],
        ['working', 1],
        ['working', 2],
        ['completed', 2],
      ]);
      expect(statuses.at(-1)).toMatchObject({ output: { ok: 'fresh' } });
      // W1's late failure of attempt 1 (its 400 came at 9 s, before attempt 2 ended) changed nothing.
      expect(attempts).toEqual([1, 2]);
      expect(await caller.request({ action: 'task.get', id: 2, taskId })).toMatchObject({
        ok: true,
        result: { status: 'completed', output: { ok: 'fresh' }, attempts: 2 },
      });
      await caller.close();
    } finally {
      server.close();
    }
  }, 90_000);
});
