import { type FakeConnection, FakeGateway, nextEvent } from './__tests__/fake-gateway';
import type { TaskContext } from './agent-handle';
import { GatewayError } from './errors';
import { connect, type GatewayClient } from './gateway-client';

let gateway: FakeGateway;
let client: GatewayClient;
let connection: FakeConnection;

beforeEach(async () => {
  gateway = await FakeGateway.start();
  client = await connect({ url: gateway.url, reconnect: { initialDelayMs: 10, maxDelayMs: 40 } });
  connection = await gateway.connection(0);
});

afterEach(async () => {
  await client.close();
  await gateway.close();
});

/** A task event as the gateway dispatches it. */
function task(taskId: string, name: string, data: unknown = {}, deadlineInMs = 5_000): Record<string, unknown> {
  return {
    event: 'task',
    taskId,
    task: name,
    data,
    from: { principal: 'user-1', agent: 'planner' },
    deadline: Date.now() + deadlineInMs,
    attempt: 1,
  };
}

describe('AgentHandle.register', () => {
  it('advertises its handlers’ task names (not the wildcard) with its options', async () => {
    const agent = client
      .agent('summarizer', { concurrency: 3, meta: { model: 'small' } })
      .handle('summarize', () => 'ok')
      .handle('translate', () => 'ok')
      .handle('*', () => 'ok');
    expect(agent.registered).toBe(false);
    expect(await agent.register()).toEqual({ agent: 'summarizer', instanceId: 'instance-1' });
    expect(connection.all('register')).toEqual([
      {
        action: 'register',
        id: expect.any(Number),
        name: 'summarizer',
        tasks: ['summarize', 'translate'],
        concurrency: 3,
        meta: { model: 'small' },
      },
    ]);
    expect(agent.registered).toBe(true);
    expect(agent.instanceId).toBe('instance-1');
  });

  it('advertises the tasks option when given, and no tasks when it has only a wildcard', async () => {
    await client
      .agent('a', { tasks: ['x'] })
      .handle('*', () => 1)
      .register();
    await client
      .agent('b')
      .handle('*', () => 1)
      .register();
    expect(connection.all('register').map((frame) => frame.tasks)).toEqual([['x'], undefined]);
  });

  it('rejects with the gateway’s refusal', async () => {
    gateway.script('register', (frame, c) =>
      c.fail(frame, { code: 'FORBIDDEN', message: 'may not register summarizer', retryable: false }),
    );
    const agent = client.agent('summarizer');
    await expect(agent.register()).rejects.toMatchObject({ code: 'FORBIDDEN', message: 'may not register summarizer' });
    expect(agent.registered).toBe(false);
  });

  it('refuses bad names, a second agent of one name, and a second handler of one task', () => {
    expect(() => client.agent('Not Valid')).toThrow(TypeError);
    client.agent('dup').handle('t', () => 1);
    expect(() => client.agent('dup')).toThrow("this client already has an agent named 'dup'");
    expect(() =>
      client
        .agent('other')
        .handle('t', () => 1)
        .handle('t', () => 2),
    ).toThrow("agent 'other' already has a handler for task 't'");
  });
});

describe('task dispatch', () => {
  it('runs the handler with data and context, and answers task.result without an id', async () => {
    let seen: TaskContext | undefined;
    const agent = client.agent('summarizer').handle('summarize', (data: { text: string }, ctx) => {
      seen = ctx;
      return { summary: data.text.toUpperCase() };
    });
    await agent.register();
    const event = task('t-1', 'summarize', { text: 'hi' });
    connection.send(event);
    expect(await connection.next('task.result')).toEqual({
      action: 'task.result',
      taskId: 't-1',
      output: { summary: 'HI' },
    });
    expect(seen).toMatchObject({
      taskId: 't-1',
      task: 'summarize',
      agent: 'summarizer',
      from: { principal: 'user-1', agent: 'planner' },
      deadline: event.deadline,
      attempt: 1,
    });
    expect(seen?.signal.aborted).toBe(false);
    expect(agent.inFlight).toBe(0);
  });

  it('runs a task that arrives right behind the register response', async () => {
    gateway.script('register', (frame, c) => {
      c.ok(frame, { agent: frame.name, instanceId: 'instance-1' });
      c.send(task('t-1', 'summarize', 'now'));
    });
    await client
      .agent('summarizer')
      .handle('summarize', (data) => data)
      .register();
    expect(await connection.next('task.result')).toEqual({ action: 'task.result', taskId: 't-1', output: 'now' });
  });

  it('answers task.error with the code, message and retryable of a thrown GatewayError', async () => {
    await client
      .agent('summarizer')
      .handle('summarize', () => {
        throw new GatewayError('UNAVAILABLE', 'model offline', { details: { model: 'small' } });
      })
      .register();
    connection.send(task('t-1', 'summarize'));
    expect(await connection.next('task.error')).toEqual({
      action: 'task.error',
      taskId: 't-1',
      error: { code: 'UNAVAILABLE', message: 'model offline', retryable: true, details: { model: 'small' } },
    });
  });

  it('answers task.error for plain errors and non-errors a handler throws', async () => {
    await client
      .agent('summarizer')
      .handle('plain', async () => {
        throw new Error('disk full');
      })
      .handle('coded', () => {
        throw Object.assign(new Error('no such file'), { code: 'ENOENT', retryable: false });
      })
      .handle('string', () => {
        throw 'just a string';
      })
      .register();
    connection.send(task('t-1', 'plain'));
    connection.send(task('t-2', 'coded'));
    connection.send(task('t-3', 'string'));
    const errors = [
      await connection.next('task.error'),
      await connection.next('task.error'),
      await connection.next('task.error'),
    ];
    expect(Object.fromEntries(errors.map((frame) => [frame.taskId, frame.error]))).toEqual({
      't-1': { message: 'disk full' },
      't-2': { code: 'ENOENT', message: 'no such file', retryable: false },
      't-3': { message: 'just a string' },
    });
  });

  it('answers task.error for a task it has no handler for', async () => {
    await client
      .agent('summarizer')
      .handle('summarize', () => 1)
      .register();
    connection.send(task('t-1', 'translate'));
    expect(await connection.next('task.error')).toEqual({
      action: 'task.error',
      taskId: 't-1',
      error: { code: 'NOT_FOUND', message: "agent 'summarizer' has no handler for task 'translate'", retryable: false },
    });
  });

  it('runs the wildcard handler for tasks without their own', async () => {
    await client
      .agent('generalist')
      .handle('known', () => 'known')
      .handle('*', (_data, ctx) => `wildcard:${ctx.task}`)
      .register();
    connection.send(task('t-1', 'anything'));
    connection.send(task('t-2', 'known'));
    const results = [await connection.next('task.result'), await connection.next('task.result')];
    expect(Object.fromEntries(results.map((frame) => [frame.taskId, frame.output]))).toEqual({
      't-1': 'wildcard:anything',
      't-2': 'known',
    });
  });

  it('routes by task name between agents on one connection', async () => {
    await client
      .agent('reader')
      .handle('read', () => 'reader')
      .register();
    await client
      .agent('writer')
      .handle('write', () => 'writer')
      .register();
    connection.send(task('t-1', 'write'));
    connection.send(task('t-2', 'erase'));
    expect((await connection.next('task.result')).output).toBe('writer');
    expect((await connection.next('task.error')).error).toEqual({
      code: 'NOT_FOUND',
      message: "no agent on this connection (reader, writer) has a handler for task 'erase'",
      retryable: false,
    });
  });

  it('gives a task to the agent the gateway names, when several on one connection handle the same task', async () => {
    await client
      .agent('query-agent')
      .handle('answer', () => 'query')
      .register();
    await client
      .agent('tech-support')
      .handle('answer', () => 'support')
      .register();
    connection.send({ ...task('t-1', 'answer'), agent: 'tech-support' });
    expect((await connection.next('task.result')).output).toBe('support');
    connection.send({ ...task('t-2', 'answer'), agent: 'query-agent' });
    expect((await connection.next('task.result')).output).toBe('query');
    connection.send({ ...task('t-3', 'erase'), agent: 'tech-support' });
    expect((await connection.next('task.error')).error).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('sends progress as task.progress without an id, before the result', async () => {
    await client
      .agent('summarizer')
      .handle('summarize', (_data, ctx) => {
        ctx.progress({ pct: 50 });
        return 'done';
      })
      .register();
    connection.send(task('t-1', 'summarize'));
    await connection.next('task.result');
    expect(connection.frames.slice(-2)).toEqual([
      { action: 'task.progress', taskId: 't-1', progress: { pct: 50 } },
      { action: 'task.result', taskId: 't-1', output: 'done' },
    ]);
  });

  it('aborts the signal on task.cancel and answers task.error CANCELED', async () => {
    const reasons: unknown[] = [];
    await client
      .agent('summarizer')
      .handle(
        'slow',
        (_data, ctx) =>
          new Promise((_resolve, reject) => {
            ctx.signal.addEventListener('abort', () => {
              reasons.push(ctx.signal.reason);
              reject(new Error('stopped'));
            });
          }),
      )
      .register();
    // Frames arrive in order: the task is running by the time its cancel is handled.
    connection.send(task('t-1', 'slow'));
    connection.send({ event: 'task.cancel', taskId: 't-1' });
    expect(await connection.next('task.error')).toEqual({
      action: 'task.error',
      taskId: 't-1',
      error: { code: 'CANCELED', message: 'task t-1 was canceled by the caller', retryable: false },
    });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(GatewayError);
    expect(reasons[0]).toMatchObject({ code: 'CANCELED' });
  });

  it('aborts the signal at the deadline with TIMEOUT', async () => {
    await client
      .agent('summarizer')
      .handle(
        'slow',
        (_data, ctx) =>
          new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
      )
      .register();
    connection.send(task('t-1', 'slow', {}, 30));
    expect(await connection.next('task.error')).toEqual({
      action: 'task.error',
      taskId: 't-1',
      error: { code: 'TIMEOUT', message: 'task t-1 passed its deadline', retryable: true },
    });
  });

  it('answers task.error when the output is not JSON-serialisable', async () => {
    await client
      .agent('summarizer')
      .handle('big', () => ({ n: 1n }))
      .register();
    connection.send(task('t-1', 'big'));
    expect(await connection.next('task.error')).toMatchObject({
      taskId: 't-1',
      error: { code: 'BAD_REQUEST', message: "'task.result' cannot be sent: it is not JSON-serialisable" },
    });
  });

  it('answers a malformed task event with task.error and reports it', async () => {
    const errors: Error[] = [];
    client.on('error', (error) => errors.push(error));
    await client
      .agent('summarizer')
      .handle('summarize', () => 1)
      .register();
    connection.send({ event: 'task', taskId: 't-1', task: 'summarize' });
    expect(await connection.next('task.error')).toMatchObject({ taskId: 't-1', error: { code: 'BAD_REQUEST' } });
    expect(errors.map((error) => error.message)).toEqual(['the gateway sent a malformed task event']);
  });

  it('aborts running tasks when the connection drops, and sends their replies nowhere', async () => {
    let reason: unknown;
    let lateReplied: () => void = () => undefined;
    const late = new Promise<void>((resolve) => {
      lateReplied = resolve;
    });
    const agent = client.agent('summarizer');
    agent.handle(
      'slow',
      (_data, ctx) =>
        new Promise((resolve) =>
          ctx.signal.addEventListener('abort', () => {
            reason = ctx.signal.reason;
            // Finishes after the client has reconnected: this reply must not reach the new connection.
            setTimeout(() => {
              resolve('late');
              lateReplied();
            }, 40);
          }),
        ),
    );
    await agent.register();
    connection.send(task('t-1', 'slow'));
    await connection.next('register');
    await client.ping(); // the task event has been handled
    expect(agent.inFlight).toBe(1);
    const connected = nextEvent(client, 'connected');
    connection.close(1012);
    await connected;
    expect(reason).toMatchObject({ code: 'UNAVAILABLE' });
    await late;
    // A frame sent after the late reply: had the reply gone out, it would come before this one.
    await client.ping();
    const second = await gateway.connection(1);
    expect(second.frames.map((frame) => frame.action)).toEqual(['hello', 'register', 'ping']);
    expect(agent.inFlight).toBe(0);
  });
});
