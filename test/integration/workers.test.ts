import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { taskEnd } from '../helpers/tasks';
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
});
