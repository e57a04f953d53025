import type { Authorizer, BusTopics, LedgerTask, Logger, Principal, RedisKeys, TaskLedger } from '@openclaw/core';
import { MAX_FOLLOWED_PER_PRINCIPAL, TaskEventRouter } from './task-events';

/** A router over a bus and ledger in memory: events are handed in as if published on a task's channel. */
function router() {
  const handlers: ((topic: string, json: string) => void)[] = [];
  const listening = new Set<string>();
  const topics = {
    listen: async (...names: string[]) => {
      for (const name of names) listening.add(name);
    },
    stop: (...names: string[]) => {
      for (const name of names) listening.delete(name);
    },
    onMessage: (h: (topic: string, json: string) => void) => handlers.push(h),
    offMessage: () => undefined,
  } as unknown as BusTopics;
  const ledger = { markWatched: async () => undefined, events: async () => [], get: async () => undefined };
  const events = new TaskEventRouter(
    topics,
    { taskChannel: (id: string) => `task:${id}` } as unknown as RedisKeys,
    ledger as unknown as TaskLedger,
    {} as Authorizer,
    {} as Logger,
  );
  events.start();
  const publish = (taskId: string, frame: Record<string, unknown>): void => {
    for (const handler of handlers) handler(`task:${taskId}`, JSON.stringify({ taskId, ...frame }));
  };
  return { events, publish, listening };
}

const alice: Principal = { id: 'alice', tenant: 'acme', roles: ['caller'] } as unknown as Principal;
const task = (taskId: string): LedgerTask => ({ taskId, status: 'working', principal: 'alice' }) as LedgerTask;

describe('following a task in this process', () => {
  it("hands over the task's live events until it ends, then stops listening to it", async () => {
    const { events, publish, listening } = router();
    const seen: unknown[] = [];
    const stop = await events.follow(alice, task('t-1'), undefined, (frame) =>
      seen.push(frame.status ?? frame.progress),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(listening.has('task:t-1')).toBe(true);
    publish('t-1', { event: 'task.progress', progress: 1, cursor: '1-1' });
    publish('t-1', { event: 'task.status', status: 'completed', cursor: '1-2' });
    publish('t-1', { event: 'task.progress', progress: 2, cursor: '1-3' });
    expect(seen).toEqual([1, 'completed']);
    expect(listening.has('task:t-1')).toBe(false);
    stop();
  });

  it('refuses a principal more open follows than the cap, and counts a stopped one out', async () => {
    const { events } = router();
    const stops = [];
    for (let i = 0; i < MAX_FOLLOWED_PER_PRINCIPAL; i++)
      stops.push(await events.follow(alice, task(`t-${i}`), undefined, () => undefined));
    await expect(events.follow(alice, task('one-more'), undefined, () => undefined)).rejects.toMatchObject({
      code: 'RATE_LIMITED',
    });
    // Another principal is not held back by alice's follows.
    const bob = { ...alice, id: 'bob' } as Principal;
    (await events.follow(bob, task('t-b'), undefined, () => undefined))();
    stops[0]!();
    stops[0]!();
    const again = await events.follow(alice, task('one-more'), undefined, () => undefined);
    await expect(events.follow(alice, task('too-many'), undefined, () => undefined)).rejects.toMatchObject({
      code: 'RATE_LIMITED',
    });
    again();
    for (const stop of stops) stop();
  });
});
