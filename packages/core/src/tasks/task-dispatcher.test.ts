import { GatewayError } from '@openclaw/protocol';
import type { BusMessage, OutgoingBusMessage } from '../bus/bus-message';
import { BusStats, type ClusterBus } from '../bus/cluster-bus';
import type { AgentRegistry } from '../registry/agent-registry';
import type { PickResult } from '../registry/agent-routing';
import { silentLogger } from '../telemetry/logger';
import type { CallRecords } from './call-records';
import type { HttpAgentClient } from './http-agent-client';
import { TaskDispatcher } from './task-dispatcher';

/**
 * The dispatcher's ordering rules, with in-memory collaborators so the order of events can be forced.
 * (Integration tests cover the same paths against a real Redis, where these orders are rare races.)
 */
function setup() {
  const calls: string[] = [];
  let resolvePick: (r: PickResult) => void = () => undefined;
  const registry = {
    pick: () => new Promise<PickResult>((resolve) => (resolvePick = resolve)),
    release: async (instanceId: string, taskId: string) => void calls.push(`release ${instanceId} ${taskId}`),
    isReplicaAlive: async () => true,
  } as unknown as AgentRegistry;
  const store = {
    create: async (r: { status: string }) => void calls.push(`create ${r.status}`),
    finish: async (_id: string, status: string) => void calls.push(`finish ${status}`),
    setHolder: async (_id: string, holder: string) => void calls.push(`holder ${holder}`),
  } as unknown as CallRecords;
  const sent: { to: string; message: OutgoingBusMessage }[] = [];
  const bus: ClusterBus = {
    replicaId: 'A',
    start: async () => undefined,
    encode: (m) => JSON.stringify(m),
    send: async (to, message) => {
      sent.push({ to, message });
      return 1;
    },
    onMessage: () => undefined,
    onResubscribed: () => undefined,
    onSubscriptionLost: () => undefined,
    healthy: () => true,
    canaryAgeMs: () => 0,
    stats: new BusStats(),
    close: async () => undefined,
  };
  const dispatcher = new TaskDispatcher({
    replicaId: 'A',
    registry,
    bus,
    store,
    http: {} as HttpAgentClient,
    logger: silentLogger(),
  });
  const reply = (taskId: string, outcome: Extract<BusMessage, { type: 'task.reply' }>['outcome']) =>
    dispatcher.handleReply({
      type: 'task.reply',
      taskId,
      instanceId: 'i1',
      outcome,
      id: 'm',
      sender: 'B',
      ts: 0,
      traceparent: '',
    });
  return { dispatcher, calls, sent, reply, resolvePick: (r: PickResult) => resolvePick(r) };
}

const request = { agent: 'a', task: 't', data: null, timeoutMs: 30_000, caller: { principal: 'p', tenant: 'd' } };

describe('TaskDispatcher ordering', () => {
  it('frees the slot when the reply is read before the pick result', async () => {
    const { dispatcher, calls, reply, resolvePick } = setup();
    const started = dispatcher.dispatch(request);
    await Promise.resolve();
    // The pick script already published the dispatch; the agent's reply overtakes the pick's result.
    const taskId = [...(dispatcher as unknown as { pending: Map<string, unknown> }).pending.keys()][0]!;
    reply(taskId, { kind: 'result', output: 42 });
    resolvePick({ kind: 'instance', instanceId: 'i1', replicaId: 'B', receivers: 1 });
    const handle = await started;
    expect(await handle.output).toBe(42);
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual(['create working', 'finish completed', `release i1 ${taskId}`]);
    dispatcher.close();
  });

  it('tells the agent to stop when the deadline passed before the pick result was read', async () => {
    const { dispatcher, calls, sent, resolvePick } = setup();
    const started = dispatcher.dispatch({ ...request, timeoutMs: 5 });
    // The 5 ms deadline must pass while the pick is pending: time has to pass.
    await new Promise((r) => setTimeout(r, 20));
    resolvePick({ kind: 'instance', instanceId: 'i1', replicaId: 'B', receivers: 1 });
    const handle = await started;
    await expect(handle.output).rejects.toMatchObject({ code: 'TIMEOUT' });
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual(['create working', 'finish failed', `release i1 ${handle.taskId}`]);
    expect(sent).toEqual([
      { to: 'B', message: { type: 'task.abort', taskId: handle.taskId, instanceId: 'i1', reason: 'deadline' } },
    ]);
    dispatcher.close();
  });

  it('tells the agent to stop when the task was interrupted (a worker handing back) before the pick result was read', async () => {
    const { dispatcher, sent, resolvePick } = setup();
    const started = dispatcher.dispatch(request);
    await Promise.resolve();
    dispatcher.close();
    dispatcher.failAllWith(new GatewayError('UNAVAILABLE', 'the worker is shutting down'));
    resolvePick({ kind: 'instance', instanceId: 'i1', replicaId: 'B', receivers: 1 });
    const handle = await started;
    await expect(handle.output).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual([
      { to: 'B', message: { type: 'task.abort', taskId: handle.taskId, instanceId: 'i1', reason: 'canceled' } },
    ]);
  });

  it('dispatches nothing once closed between the admission and the routing', async () => {
    const { dispatcher, calls } = setup();
    const started = dispatcher.dispatch(request);
    dispatcher.close();
    await expect(started).rejects.toMatchObject({ code: 'UNAVAILABLE', dispatched: false });
    expect(calls).toEqual([]);
  });

  it('records where the task went when the pick result comes first', async () => {
    const { dispatcher, calls, reply, resolvePick } = setup();
    const started = dispatcher.dispatch(request);
    await Promise.resolve();
    resolvePick({ kind: 'instance', instanceId: 'i1', replicaId: 'B', receivers: 1 });
    const handle = await started;
    reply(handle.taskId, { kind: 'result', output: 'ok' });
    expect(await handle.output).toBe('ok');
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual(['create working', 'holder B', `release i1 ${handle.taskId}`, 'finish completed']);
    dispatcher.close();
  });
});
