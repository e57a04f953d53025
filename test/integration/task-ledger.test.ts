import { type LedgerTask, principalDigest, RedisKeys, TaskLedger } from '@openclaw/core';
import Redis from 'ioredis';
import { RedisServerProcess } from '../helpers/redis-server';
import { waitFor } from '../helpers/wait';

/** The async task ledger's steps against a real Redis: what each writes, and in how many commands. */
describe('TaskLedger', () => {
  let redis: RedisServerProcess;
  let connection: Redis;
  let listener: Redis;
  const keys = new RedisKeys('tl');
  const events: Record<string, unknown>[] = [];

  beforeAll(async () => {
    redis = await RedisServerProcess.start();
    connection = new Redis(redis.url);
    listener = new Redis(redis.url);
    await listener.subscribe(keys.principalEvents(principalDigest('acme', 'alice')));
    listener.on('message', (_channel: string, raw: string) => events.push(JSON.parse(raw) as Record<string, unknown>));
  });
  afterAll(async () => {
    connection.disconnect();
    listener.disconnect();
    await redis.stop();
  });

  let n = 0;
  const newTask = (overrides: Partial<LedgerTask> = {}): LedgerTask => ({
    taskId: `task-${++n}`,
    kind: 'task',
    agent: 'echo',
    task: 'run',
    status: 'submitted',
    createdAt: Date.now(),
    updatedAt: Date.now(),
    principal: 'alice',
    tenant: 'acme',
    from: { principal: 'alice' },
    roles: ['caller'],
    data: { n },
    timeoutMs: 30_000,
    maxAttempts: 3,
    backoffMs: 1000,
    attempts: 0,
    cancelRequested: false,
    escalationTimeoutMs: 60_000,
    escalationOnTimeout: 'fail',
    retentionMs: 3_600_000,
    ...overrides,
  });
  const calls = async (command: string): Promise<number> => {
    const stats = await connection.info('commandstats');
    return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
  };
  /** Script calls, the first of which is an EVAL after a NOSCRIPT. */
  const scripts = async (): Promise<number> => (await calls('evalsha')) + (await calls('eval'));
  const eventsOf = (taskId: string) => events.filter((e) => e.taskId === taskId);

  it('writes a new task and its first event in one script call, and publishes the event', async () => {
    const ledger = new TaskLedger(connection, keys);
    const task = newTask();
    await ledger.create(task);
    await connection.config('RESETSTAT');
    await ledger.create(newTask());
    expect(await scripts()).toBe(1);
    expect(await calls('hset')).toBe(1); // inside the script
    expect(await ledger.get(task.taskId)).toMatchObject({ status: 'submitted', data: task.data, principal: 'alice' });
    expect(await connection.pttl(keys.task(task.taskId))).toBeGreaterThan(3_500_000);
    await waitFor(async () => eventsOf(task.taskId).length === 1, { what: 'the submitted event' });
    expect(eventsOf(task.taskId)[0]).toMatchObject({ event: 'task.status', status: 'submitted', agent: 'echo' });
    expect(await ledger.events(task.taskId)).toHaveLength(1);
  });

  it('starts an attempt in one step: reads the record, counts the attempt, moves it to working with its event', async () => {
    const ledger = new TaskLedger(connection, keys);
    const task = newTask();
    await ledger.create(task);
    await connection.config('RESETSTAT');
    const begun = await ledger.begin({ taskId: task.taskId, tenant: 'acme', principal: 'alice' }, 'worker-1');
    expect(await scripts()).toBe(1);
    expect(await calls('hgetall')).toBe(1); // inside the script: the worker reads no record of its own
    expect(begun.attempt).toBe(1);
    expect(begun.task).toMatchObject({ status: 'working', attempts: 1, worker: 'worker-1', data: task.data });
    expect(await ledger.get(task.taskId)).toMatchObject({ status: 'working', attempts: 1, worker: 'worker-1' });
    await waitFor(async () => eventsOf(task.taskId).length === 2, { what: 'the working event' });
    const working = eventsOf(task.taskId)[1]!;
    expect(working).toMatchObject({ event: 'task.status', status: 'working', attempt: 1 });
    expect(typeof working.cursor).toBe('string');
    const again = await ledger.begin({ taskId: task.taskId, tenant: 'acme', principal: 'alice' }, 'worker-2');
    expect(again.attempt).toBe(2);
    // Listed as working (this process's index writes go first).
    expect((await ledger.list('acme', 'working', 100)).map((t) => t.taskId)).toContain(task.taskId);
  });

  it('leaves the record as it is when the worker must decide first, and returns it', async () => {
    const ledger = new TaskLedger(connection, keys);
    const begin = (t: LedgerTask, owner = { tenant: 'acme', principal: 'alice' }) =>
      ledger.begin({ taskId: t.taskId, ...owner }, 'worker-1');
    const canceled = newTask();
    await ledger.create(canceled);
    await ledger.setFields(canceled.taskId, { cancelRequested: '1' });
    const answered = newTask({ status: 'input-required' });
    await ledger.create(answered);
    await ledger.setFields(answered.taskId, { response: JSON.stringify({ output: 1, by: 'op', at: 1 }) });
    const approval = newTask();
    await ledger.create(approval);
    await ledger.setFields(approval.taskId, { approvalId: 'ap-1' });
    const done = newTask({ status: 'completed' });
    await ledger.create(done);
    const other = newTask();
    await ledger.create(other);

    for (const [task, owner] of [
      [canceled, undefined],
      [answered, undefined],
      [approval, undefined],
      [done, undefined],
      // A job naming another owner than the record: the record decides.
      [other, { tenant: 'acme', principal: 'mallory' }],
      [other, { tenant: 'other', principal: 'alice' }],
    ] as const) {
      const before = await ledger.get(task.taskId);
      const begun = await begin(task, owner);
      expect(begun.attempt).toBeUndefined();
      expect(begun.task).toEqual(before);
      expect(await ledger.get(task.taskId)).toEqual(before);
    }
    expect(await ledger.begin({ taskId: 'no-such-task', tenant: 'acme', principal: 'alice' }, 'w')).toEqual({
      task: undefined,
    });
  });

  it("writes one turn's index moves together, one ZADD and one ZREM per index, not one per task", async () => {
    const ledger = new TaskLedger(connection, keys);
    const tasks = Array.from({ length: 20 }, () => newTask());
    await Promise.all(tasks.map((t) => ledger.create(t)));
    await new Promise((resolve) => setImmediate(resolve));
    await connection.config('RESETSTAT');
    await Promise.all(tasks.map((t) => ledger.begin({ taskId: t.taskId, tenant: 'acme', principal: 'alice' }, 'w')));
    await Promise.all(
      tasks.map((t) => ledger.transition(t, { status: 'completed', from: ['working'], fields: { output: '1' } })),
    );
    await waitFor(async () => (await calls('zadd')) >= 1, { what: 'the index written' });
    // 40 moves (20 tasks, each to working and then to completed), in the few turns their replies came in.
    expect(await calls('zadd')).toBeLessThanOrEqual(6);
    expect(await calls('zrem')).toBeLessThanOrEqual(6);
    const completed = (await ledger.list('acme', 'completed', 1000)).map((t) => t.taskId);
    for (const t of tasks) expect(completed).toContain(t.taskId);
    const working = (await ledger.list('acme', 'working', 1000)).map((t) => t.taskId);
    for (const t of tasks) expect(working).not.toContain(t.taskId);
  });
});
