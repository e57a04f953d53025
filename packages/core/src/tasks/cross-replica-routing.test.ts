import { type InMemoryBus, InMemoryBusNetwork } from '../bus/in-memory-bus';
import type { AgentRegistry } from '../registry/agent-registry';
import type { PickResult } from '../registry/agent-routing';
import { silentLogger } from '../telemetry/logger';
import type { CallRecords } from './call-records';
import type { HttpAgentClient } from './http-agent-client';
import { TaskDispatcher } from './task-dispatcher';

/**
 * A call routed from one replica to an agent held by another, over the in-memory bus: every message
 * goes through its wire form and the bus's parser, as through Redis, with no Redis at all. Replica B
 * plays the holder (what a gateway's agent host does with a dispatch).
 */
function cluster(holder: (bus: InMemoryBus, message: Record<string, unknown>) => void) {
  const network = new InMemoryBusNetwork();
  const a = network.bus('A');
  const b = network.bus('B');
  const registry = {
    // One instance, i1 on B; a pick that must leave it out finds none.
    pick: async (
      _agent: string,
      _task: string,
      options: { exclude?: ReadonlySet<string> } = {},
    ): Promise<PickResult> =>
      options.exclude?.has('i1') ? { kind: 'none' } : { kind: 'instance', instanceId: 'i1', replicaId: 'B' },
    isReplicaAlive: async () => network.reachable('B'),
  } as unknown as AgentRegistry;
  const store = { create: async () => undefined, finish: async () => undefined, setHolder: async () => undefined };
  const dispatcher = new TaskDispatcher({
    replicaId: 'A',
    registry,
    bus: a,
    store: store as unknown as CallRecords,
    http: {} as HttpAgentClient,
    logger: silentLogger(),
  });
  a.onMessage((message) => {
    if (message.type === 'task.reply') dispatcher.handleReply(message);
  });
  const seen: Record<string, unknown>[] = [];
  b.onMessage((message) => {
    seen.push(message as unknown as Record<string, unknown>);
    holder(b, message as unknown as Record<string, unknown>);
  });
  return { network, a, b, dispatcher, seen, start: () => Promise.all([a.start(), b.start()]) };
}

const call = { agent: 'doubler', task: 'double', data: 21, timeoutMs: 2_000, caller: { principal: 'p', tenant: 'd' } };

/** The holder's reply to a dispatch, as a gateway sends it. */
function reply(bus: InMemoryBus, dispatch: Record<string, unknown>, outcome: Record<string, unknown>) {
  void bus.send(
    dispatch.sender as string,
    {
      type: 'task.reply',
      taskId: dispatch.taskId as string,
      instanceId: dispatch.instanceId as string,
      outcome,
    } as never,
  );
}

describe('routing across replicas over the in-memory bus', () => {
  it("delivers the dispatch to the holder's replica and the agent's progress and result back to the caller", async () => {
    const progress: unknown[] = [];
    const { dispatcher, seen, start } = cluster((bus, message) => {
      if (message.type !== 'task.dispatch') return;
      reply(bus, message, { kind: 'progress', progress: { half: true } });
      reply(bus, message, { kind: 'result', output: (message.data as number) * 2 });
    });
    await start();
    const handle = await dispatcher.dispatch({ ...call, onProgress: (p: unknown) => progress.push(p) });
    expect(await handle.output).toBe(42);
    expect(progress).toEqual([{ half: true }]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      type: 'task.dispatch',
      sender: 'A',
      taskId: handle.taskId,
      instanceId: 'i1',
      task: 'double',
      data: 21,
      attempt: 1,
    });
    dispatcher.close();
  });

  it('tells the holder to stop when the caller cancels, and ends the call as canceled', async () => {
    const { dispatcher, seen, start } = cluster(() => undefined);
    await start();
    const handle = await dispatcher.dispatch(call);
    await new Promise((resolve) => setImmediate(resolve));
    expect(dispatcher.cancelLocal(handle.taskId)).toBe(true);
    await expect(handle.output).rejects.toMatchObject({ code: 'CANCELED' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen.map((m) => m.type)).toEqual(['task.dispatch', 'task.abort']);
    expect(seen[1]).toMatchObject({ taskId: handle.taskId, instanceId: 'i1', reason: 'canceled' });
    dispatcher.close();
  });

  it('ends the call by its deadline when the reply never comes, and refuses it when the holder cannot be reached', async () => {
    const { network, dispatcher, start } = cluster(() => undefined);
    await start();
    const silent = await dispatcher.dispatch({ ...call, timeoutMs: 50 });
    await expect(silent.output).rejects.toMatchObject({ code: 'TIMEOUT' });
    // B is cut off: the dispatch reaches no one, which is known at once; the call is not dispatched.
    network.partition('B');
    const unreachable = await dispatcher.dispatch(call);
    await expect(unreachable.output).rejects.toMatchObject({ code: 'AGENT_NOT_FOUND', dispatched: false });
    dispatcher.close();
  });
});
