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
  const picks: { exclude?: ReadonlySet<string>; fresh?: boolean }[] = [];
  const registry = {
    pick: (_agent: string, _task: string, options: { exclude?: ReadonlySet<string>; fresh?: boolean }) => {
      picks.push({ exclude: options.exclude && new Set(options.exclude), fresh: options.fresh });
      return new Promise<PickResult>((resolve) => (resolvePick = resolve));
    },
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
    send: async (to, message) => {
      sent.push({ to, message });
      return 1;
    },
    broadcast: async () => undefined,
    onMessage: () => undefined,
    onResubscribed: () => undefined,
    onSubscriptionLost: () => undefined,
    healthy: () => true,
    canaryAgeMs: () => 0,
    topics: {
      listen: async () => undefined,
      stop: () => undefined,
      publish: async () => 0,
      onMessage: () => undefined,
      offMessage: () => undefined,
    },
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
  const reply = (taskId: string, outcome: Extract<BusMessage, { type: 'task.reply' }>['outcome'], instanceId = 'i1') =>
    dispatcher.handleReply({
      type: 'task.reply',
      taskId,
      instanceId,
      outcome,
      id: 'm',
      sender: 'B',
      ts: 0,
      traceparent: '',
    });
  return { dispatcher, calls, sent, picks, reply, resolvePick: (r: PickResult) => resolvePick(r) };
}

const request = { agent: 'a', task: 't', data: null, timeoutMs: 30_000, caller: { principal: 'p', tenant: 'd' } };

describe('TaskDispatcher ordering', () => {
  it('routes the task to another instance when the one it was sent to refuses it', async () => {
    const { dispatcher, sent, picks, reply, resolvePick } = setup();
    const started = dispatcher.dispatch(request);
    await Promise.resolve();
    resolvePick({ kind: 'instance', instanceId: 'i1', replicaId: 'B' });
    const handle = await started;
    // i1's replica finds it at its concurrency: the task goes to the next pick, never to i1 again.
    reply(handle.taskId, { kind: 'refused', reason: 'busy' });
    await Promise.resolve();
    expect(picks[1]).toEqual({ exclude: new Set(['i1']), fresh: false });
    resolvePick({ kind: 'instance', instanceId: 'i2', replicaId: 'C' });
    await new Promise((r) => setImmediate(r));
    // A late refusal naming the first instance changes nothing.
    reply(handle.taskId, { kind: 'refused', reason: 'gone' });
    reply(handle.taskId, { kind: 'result', output: 7 }, 'i2');
    expect(await handle.output).toBe(7);
    expect(sent.map((s) => [s.to, s.message.type, (s.message as { instanceId?: string }).instanceId])).toEqual([
      ['B', 'task.dispatch', 'i1'],
      ['C', 'task.dispatch', 'i2'],
    ]);
    expect(picks).toHaveLength(2);
    dispatcher.close();
  });

  it('refuses the task, not dispatched, when no other instance is left after a refusal', async () => {
    const { dispatcher, reply, picks, resolvePick } = setup();
    const started = dispatcher.dispatch(request);
    await Promise.resolve();
    resolvePick({ kind: 'instance', instanceId: 'i1', replicaId: 'B' });
    const handle = await started;
    reply(handle.taskId, { kind: 'refused', reason: 'gone' });
    await Promise.resolve();
    // A gone instance means the routing copy is stale: it is loaded again for the next pick.
    expect(picks[1]).toEqual({ exclude: new Set(['i1']), fresh: true });
    resolvePick({ kind: 'none' });
    await expect(handle.output).rejects.toMatchObject({ code: 'AGENT_NOT_FOUND', dispatched: false });
    dispatcher.close();
  });

  it('says the replica is gone, not that instances are busy, when the one left is the gone one', async () => {
    const { dispatcher, reply, resolvePick } = setup();
    const started = dispatcher.dispatch(request);
    await Promise.resolve();
    resolvePick({ kind: 'instance', instanceId: 'i1', replicaId: 'B' });
    const handle = await started;
    reply(handle.taskId, { kind: 'refused', reason: 'gone' });
    await Promise.resolve();
    // Its replica died a moment ago: the copy still lists the instance, which is excluded.
    resolvePick({ kind: 'busy', instances: 1 });
    await expect(handle.output).rejects.toMatchObject({
      code: 'AGENT_UNAVAILABLE',
      dispatched: false,
      message: "the replica holding agent 'a' is gone; retry shortly",
    });
    dispatcher.close();
  });

  it('sends nothing when the deadline passed before the pick returned', async () => {
    const { dispatcher, calls, sent, resolvePick } = setup();
    const started = dispatcher.dispatch({ ...request, timeoutMs: 5 });
    // The 5 ms deadline must pass while the pick is pending: time has to pass.
    await new Promise((r) => setTimeout(r, 20));
    resolvePick({ kind: 'instance', instanceId: 'i1', replicaId: 'B' });
    const handle = await started;
    await expect(handle.output).rejects.toMatchObject({ code: 'TIMEOUT' });
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual(['create working', 'finish failed']);
    expect(sent).toEqual([]);
    dispatcher.close();
  });

  it('sends nothing when the task was interrupted (a worker handing back) before the pick returned', async () => {
    const { dispatcher, sent, resolvePick } = setup();
    const started = dispatcher.dispatch(request);
    await Promise.resolve();
    dispatcher.close();
    dispatcher.failAllWith(new GatewayError('UNAVAILABLE', 'the worker is shutting down'));
    resolvePick({ kind: 'instance', instanceId: 'i1', replicaId: 'B' });
    const handle = await started;
    await expect(handle.output).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual([]);
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
    resolvePick({ kind: 'instance', instanceId: 'i1', replicaId: 'B' });
    const handle = await started;
    reply(handle.taskId, { kind: 'result', output: 'ok' });
    expect(await handle.output).toBe('ok');
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual(['create working', 'holder B', 'finish completed']);
    dispatcher.close();
  });

  it('cancels a dispatch whose cancel came before it began (a worker between starting an attempt and dispatching it)', async () => {
    const { dispatcher, sent, resolvePick } = setup();
    const cancel = (taskId: string) =>
      dispatcher.handleCancelRequest({
        type: 'task.cancel-request',
        taskId,
        id: 'm',
        sender: 'B',
        ts: 0,
        traceparent: '',
      });
    cancel('t-early');
    const handle = await dispatcher.dispatch({ ...request, taskId: 't-early', record: false });
    await expect(handle.output).rejects.toMatchObject({ code: 'CANCELED' });
    // Nothing reached an agent, and the cancel was used up: the next dispatch of the id runs.
    expect(sent).toEqual([]);
    const again = dispatcher.dispatch({ ...request, taskId: 't-early', record: false });
    await Promise.resolve();
    resolvePick({ kind: 'instance', instanceId: 'i1', replicaId: 'B' });
    const running = await again;
    expect(sent).toHaveLength(1);
    expect(dispatcher.cancelLocal('t-early')).toBe(true);
    await expect(running.output).rejects.toMatchObject({ code: 'CANCELED' });
    dispatcher.close();
  });
});
