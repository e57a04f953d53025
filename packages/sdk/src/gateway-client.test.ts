import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { delay, FakeGateway, nextEvent } from './__tests__/fake-gateway';
import type { ConnectedInfo, DisconnectedInfo, ReconnectingInfo } from './client-events';
import type { GatewayClientOptions } from './client-options';
import { GatewayError, UnexpectedFrameError } from './errors';
import { connect, GatewayClient } from './gateway-client';
import { retryAfterHeaderMs } from './gateway-connection';
import { SDK_VERSION } from './version';

/** Small delays keep every reconnection test well under a second. */
const FAST = { initialDelayMs: 10, maxDelayMs: 40 };

let gateway: FakeGateway;
const clients: GatewayClient[] = [];

beforeEach(async () => {
  gateway = await FakeGateway.start();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await gateway.close();
});

async function open(options: Partial<GatewayClientOptions> = {}): Promise<GatewayClient> {
  const client = await connect({ url: gateway.url, reconnect: FAST, ...options });
  clients.push(client);
  return client;
}

/** Resolves once `condition` holds, checking every 5 ms. */
/** Waits for a condition, failing with `what` after `timeoutMs` rather than hanging the test. */
async function waitUntil(condition: () => boolean, what = 'the condition', timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(5);
  }
}

/** A rejection, for assertions on its fields. */
async function failure(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    return error as GatewayError;
  }
  throw new Error('expected a rejection');
}

describe('connect', () => {
  it('sends hello with the client name and keeps the result as the session', async () => {
    const client = await open({ clientName: 'billing' });
    const connection = await gateway.connection(0);
    expect(connection.all('hello')).toEqual([
      { action: 'hello', id: 1, protocol: 1, client: { name: 'billing', version: SDK_VERSION } },
    ]);
    expect(client.connectionState).toBe('connected');
    expect(client.session).toEqual({
      protocol: 1,
      sessionId: 'session-1',
      replica: 'fake-replica',
      principal: { id: 'anonymous', tenant: 'default', roles: ['admin'] },
      limits: { maxFrameBytes: 1024 * 1024, heartbeatMs: 0 },
    });
  });

  it('skips hello when told to', async () => {
    const client = await open({ hello: false });
    await client.ping();
    expect((await gateway.connection(0)).all('hello')).toEqual([]);
    expect(client.session).toBeUndefined();
  });

  it('sends an API key as X-API-Key and a token as a bearer', async () => {
    await gateway.close();
    gateway = await FakeGateway.start({ apiKey: 'key-0123456789abcdef' });
    await open({ apiKey: 'key-0123456789abcdef' });
    await open({ token: 'key-0123456789abcdef' });
    expect((await gateway.connection(0)).request.headers['x-api-key']).toBe('key-0123456789abcdef');
    expect((await gateway.connection(1)).request.headers.authorization).toBe('Bearer key-0123456789abcdef');
  });

  it('rejects refused credentials with the gateway’s UNAUTHENTICATED error', async () => {
    await gateway.close();
    gateway = await FakeGateway.start({ apiKey: 'key-0123456789abcdef' });
    const error = await failure(open({ apiKey: 'wrong' }));
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.code).toBe('UNAUTHENTICATED');
    expect(error.message).toBe('missing or invalid credentials');
    expect(error.retryable).toBe(false);
    expect(gateway.connections).toHaveLength(0);
  });

  it('rejects with UNAVAILABLE when nothing listens, without the URL query in the message', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const error = await failure(open({ url: `ws://127.0.0.1:${port}/?api_key=secret` }));
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(`ws://127.0.0.1:${port}/`);
    expect(error.message).not.toContain('secret');
  });

  it('a client never started refuses requests at once, not retryable, and call() does not wait to retry', async () => {
    const client = new GatewayClient({ url: gateway.url });
    const started = Date.now();
    const error = await failure(client.call('summarizer', 'summarize', {}, { timeoutMs: 5_000 }));
    expect(error).toMatchObject({ code: 'UNAVAILABLE', retryable: false });
    expect(error.message).toBe("cannot send 'coordinator': the client was not started (call start())");
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(gateway.connections).toEqual([]);
  });

  it('refuses a URL that is not ws:// or wss://', () => {
    expect(() => connect({ url: 'http://127.0.0.1:1' })).toThrow(/url: expected a ws:\/\/ or wss:\/\/ URL/);
  });
});

describe('requests', () => {
  it('matches responses to requests by id, in any order', async () => {
    const client = await open();
    const connection = await gateway.connection(0);
    const first = client.taskGet('t-1');
    const second = client.taskGet('t-2');
    const frameOne = await connection.next('task.get');
    const frameTwo = await connection.next('task.get');
    expect(frameOne.taskId).toBe('t-1');
    expect(frameTwo.taskId).toBe('t-2');
    expect(frameOne.id).not.toBe(frameTwo.id);
    const record = (taskId: string) => ({
      taskId,
      agent: 'summarizer',
      task: 'summarize',
      status: 'completed',
      createdAt: 1,
      updatedAt: 2,
    });
    connection.ok(frameTwo, record('t-2'));
    connection.ok(frameOne, record('t-1'));
    expect((await first).taskId).toBe('t-1');
    expect((await second).taskId).toBe('t-2');
  });

  it('rejects with a GatewayError carrying every field of the error response', async () => {
    const client = await open();
    const connection = await gateway.connection(0);
    const pending = client.request('coordinator', { agent: 'busy', task: 'work' });
    connection.fail(await connection.next('coordinator'), {
      code: 'RATE_LIMITED',
      message: 'too many requests',
      retryable: true,
      retryAfterMs: 250,
      details: { limit: 5 },
    });
    const error = await failure(pending);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({
      name: 'GatewayError',
      code: 'RATE_LIMITED',
      message: 'too many requests',
      retryable: true,
      retryAfterMs: 250,
      details: { limit: 5 },
    });
  });

  it('rejects with TIMEOUT at the local deadline, and drops the late response quietly', async () => {
    const client = await open();
    const errors = jest.fn();
    client.on('error', errors);
    const connection = await gateway.connection(0);
    const error = await failure(client.request('task.get', { taskId: 't-1' }, { timeoutMs: 30 }));
    expect(error.code).toBe('TIMEOUT');
    expect(error.retryable).toBe(true);
    expect(error.message).toBe("no response to 'task.get' within 30 ms");
    connection.ok(await connection.next('task.get'), { taskId: 't-1' });
    await client.ping(); // frames arrive in order: the late response has been handled by now
    expect(errors).not.toHaveBeenCalled();
  });

  it('rejects pending requests with retryable UNAVAILABLE when the connection drops', async () => {
    const client = await open({ reconnect: false });
    const connection = await gateway.connection(0);
    const pending = client.taskGet('t-1');
    await connection.next('task.get');
    connection.close(1012, 'restart');
    const error = await failure(pending);
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.retryable).toBe(true);
    expect(error.details).toEqual({ closeCode: 1012, reason: 'restart' });
    const later = await failure(client.ping());
    expect(later.code).toBe('UNAVAILABLE');
  });

  it('aborts a request with CANCELED', async () => {
    const client = await open();
    const controller = new AbortController();
    const pending = client.request('task.get', { taskId: 't-1' }, { signal: controller.signal });
    await (await gateway.connection(0)).next('task.get');
    controller.abort();
    const error = await failure(pending);
    expect(error.code).toBe('CANCELED');
    expect(error.retryable).toBe(false);
  });

  it('refuses, without sending, a frame over the advertised limit or one that is not JSON', async () => {
    await gateway.close();
    gateway = await FakeGateway.start({ maxFrameBytes: 200 });
    const client = await open();
    const tooLarge = await failure(client.call('summarizer', 'summarize', { text: 'x'.repeat(500) }));
    expect(tooLarge.code).toBe('PAYLOAD_TOO_LARGE');
    expect(tooLarge.details).toEqual({ maxFrameBytes: 200 });
    const notJson = await failure(client.request('task.get', { taskId: 10n }));
    expect(notJson.code).toBe('BAD_REQUEST');
    await client.ping();
    expect((await gateway.connection(0)).frames.map((frame) => frame.action)).toEqual(['hello', 'ping']);
  });

  it('close() rejects pending requests with UNAVAILABLE, not retryable, and is idempotent', async () => {
    const client = await open();
    const closed = nextEvent(client, 'closed');
    const pending = client.taskGet('t-1');
    await (await gateway.connection(0)).next('task.get');
    const closing = client.close();
    expect(client.close()).toBe(closing);
    await closing;
    const error = await failure(pending);
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.retryable).toBe(false);
    expect(await closed).toEqual({ code: 1000, reason: 'closed by the client' });
    expect(client.connectionState).toBe('closed');
    expect((await failure(client.ping())).retryable).toBe(false);
  });
});

describe('convenience wrappers', () => {
  it('agentsList, taskGet, taskCancel, submit and ping send their actions and return the results', async () => {
    const client = await open();
    const connection = await gateway.connection(0);
    gateway.script('agents.list', (frame, c) =>
      c.ok(frame, [{ name: 'summarizer', kind: 'ws', instances: 2, tasks: ['summarize'], capacity: 4 }]),
    );
    gateway.script('task.cancel', (frame, c) => c.ok(frame, { taskId: frame.taskId, status: 'canceled' }));
    gateway.script('coordinator', (frame, c) => c.ok(frame, { taskId: 't-7', status: 'submitted' }));

    expect(await client.agentsList()).toEqual([
      { name: 'summarizer', kind: 'ws', instances: 2, tasks: ['summarize'], capacity: 4 },
    ]);
    expect(await client.taskCancel('t-3')).toEqual({ taskId: 't-3', status: 'canceled' });
    expect(await client.submit('summarizer', 'summarize', { text: 'hi' }, { idempotencyKey: 'k-1' })).toEqual({
      taskId: 't-7',
      status: 'submitted',
    });
    const ping = await client.ping();
    expect(ping.pong).toBe(true);
    expect(ping.time).toBe(1_700_000_000_000);
    expect(ping.rttMs).toBeGreaterThanOrEqual(0);

    expect(connection.all('task.cancel')).toEqual([{ action: 'task.cancel', id: expect.any(Number), taskId: 't-3' }]);
    expect(connection.all('coordinator')).toEqual([
      {
        action: 'coordinator',
        id: expect.any(Number),
        agent: 'summarizer',
        task: 'summarize',
        data: { text: 'hi' },
        mode: 'async',
        idempotencyKey: 'k-1',
      },
    ]);
  });

  it('rejects a result that does not match the protocol with INTERNAL', async () => {
    const client = await open();
    gateway.script('agents.list', (frame, c) => c.ok(frame, { not: 'a list' }));
    const error = await failure(client.agentsList());
    expect(error.code).toBe('INTERNAL');
    expect(error.message).toBe("the gateway sent a malformed 'agents.list' result");
  });
});

describe('call', () => {
  it('sends a sync coordinator request and resolves with the output', async () => {
    const client = await open();
    const connection = await gateway.connection(0);
    const output = client.call('summarizer', 'summarize', { text: 'hello' }, { timeoutMs: 2_000 });
    const frame = await connection.next('coordinator');
    expect(frame).toEqual({
      action: 'coordinator',
      id: expect.any(Number),
      agent: 'summarizer',
      task: 'summarize',
      data: { text: 'hello' },
      timeoutMs: 2_000,
      mode: 'sync',
    });
    connection.ok(frame, { taskId: 't-1', status: 'completed', output: { summary: 'hi' } });
    expect(await output).toEqual({ summary: 'hi' });
  });

  it('rejects with the gateway’s error', async () => {
    const client = await open();
    gateway.script('coordinator', (frame, c) =>
      c.fail(frame, { code: 'AGENT_NOT_FOUND', message: "no agent named 'ghost'", retryable: false }),
    );
    const error = await failure(client.call('ghost', 'haunt'));
    expect(error).toMatchObject({ code: 'AGENT_NOT_FOUND', message: "no agent named 'ghost'", retryable: false });
  });

  it('hands progress carrying its request id to onProgress, and every progress to task.progress listeners', async () => {
    const client = await open();
    const connection = await gateway.connection(0);
    const onProgress = jest.fn();
    const events = jest.fn();
    client.on('task.progress', events);
    const output = client.call('summarizer', 'summarize', undefined, { onProgress });
    const frame = await connection.next('coordinator');
    expect(frame).not.toHaveProperty('data');
    connection.send({ event: 'task.progress', id: frame.id, taskId: 't-1', progress: { pct: 50 } });
    connection.send({ event: 'task.progress', id: 9_999, taskId: 't-other', progress: { pct: 10 } });
    connection.send({ event: 'task.progress', taskId: 't-async', progress: 'queued' });
    connection.ok(frame, { taskId: 't-1', status: 'completed', output: 'done' });
    expect(await output).toBe('done');
    expect(onProgress.mock.calls).toEqual([[{ pct: 50 }, { taskId: 't-1' }]]);
    expect(events.mock.calls).toEqual([
      [{ taskId: 't-1', progress: { pct: 50 }, id: frame.id }],
      [{ taskId: 't-other', progress: { pct: 10 }, id: 9_999 }],
      [{ taskId: 't-async', progress: 'queued' }],
    ]);
  });

  it('on abort rejects with CANCELED and cancels the task once its id is known', async () => {
    const client = await open();
    const connection = await gateway.connection(0);
    gateway.script('task.cancel', (frame, c) => c.ok(frame, { taskId: frame.taskId, status: 'canceled' }));
    const controller = new AbortController();
    const output = client.call('summarizer', 'summarize', {}, { signal: controller.signal });
    const frame = await connection.next('coordinator');
    connection.send({ event: 'task.progress', id: frame.id, taskId: 't-9', progress: 1 });
    await client.ping(); // the progress has been handled
    controller.abort();
    const error = await failure(output);
    expect(error.code).toBe('CANCELED');
    expect((await connection.next('task.cancel')).taskId).toBe('t-9');
  });
});

describe('call: transparent retries', () => {
  const busy = { code: 'AGENT_UNAVAILABLE', message: 'all instances busy', retryable: true, dispatched: false };

  it('sends a call again when no agent received it, with what is left of the deadline', async () => {
    const client = await open();
    const connection = await gateway.connection(0);
    const retries: unknown[] = [];
    client.on('call.retry', (info) => retries.push(info));
    const output = client.call('summarizer', 'summarize', { text: 'hi' }, { timeoutMs: 5_000 });
    const first = await connection.next('coordinator');
    connection.fail(first, { ...busy, retryAfterMs: 30 });
    const second = await connection.next('coordinator');
    expect(second).toMatchObject({ agent: 'summarizer', task: 'summarize', data: { text: 'hi' }, mode: 'sync' });
    expect(second.id).not.toBe(first.id);
    expect(second.timeoutMs).toBeLessThanOrEqual(5_000 - 30);
    connection.ok(second, { taskId: 't-2', status: 'completed', output: 'done' });
    expect(await output).toBe('done');
    expect(retries).toEqual([
      {
        agent: 'summarizer',
        task: 'summarize',
        attempt: 2,
        delayMs: expect.any(Number),
        error: expect.objectContaining({ code: 'AGENT_UNAVAILABLE', dispatched: false }),
      },
    ]);
    expect((retries[0] as { delayMs: number }).delayMs).toBeGreaterThanOrEqual(30);
  });

  it('never sends again a call an agent may have received (no dispatched: false)', async () => {
    const client = await open();
    const connection = await gateway.connection(0);
    const output = client.call('summarizer', 'summarize', {}, { timeoutMs: 5_000 });
    connection.fail(await connection.next('coordinator'), {
      code: 'AGENT_UNAVAILABLE',
      message: 'the replica holding it went away',
      retryable: true,
    });
    const error = await failure(output);
    expect(error).toMatchObject({ code: 'AGENT_UNAVAILABLE', retryable: true, dispatched: undefined });
    await client.ping();
    expect(connection.all('coordinator')).toHaveLength(1);
  });

  it('does not retry errors that are not retryable, nor when transparentRetry is false', async () => {
    const client = await open();
    const connection = await gateway.connection(0);
    const notFound = client.call('ghost', 'haunt');
    connection.fail(await connection.next('coordinator'), {
      code: 'AGENT_NOT_FOUND',
      message: 'no agent',
      retryable: false,
      dispatched: false,
    });
    expect((await failure(notFound)).code).toBe('AGENT_NOT_FOUND');
    const optedOut = client.call('summarizer', 'summarize', {}, { transparentRetry: false });
    connection.fail(await connection.next('coordinator'), busy);
    expect(await failure(optedOut)).toMatchObject({ code: 'AGENT_UNAVAILABLE', dispatched: false });
    await client.ping();
    expect(connection.all('coordinator')).toHaveLength(2);
  });

  it('gives up with the last error when the deadline leaves no room', async () => {
    const client = await open();
    gateway.script('coordinator', (frame, c) => c.fail(frame, { ...busy, retryAfterMs: 100 }));
    const error = await failure(client.call('summarizer', 'summarize', {}, { timeoutMs: 350 }));
    expect(error).toMatchObject({ code: 'AGENT_UNAVAILABLE', dispatched: false });
    // 100 ms apart within 350 ms: at most four attempts, and at least two.
    const attempts = (await gateway.connection(0)).all('coordinator').length;
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(4);
  });

  it('after a 1001 close with the call unanswered, sends it again on the next connection', async () => {
    const client = await open();
    const first = await gateway.connection(0);
    const output = client.call('summarizer', 'summarize', { n: 1 }, { timeoutMs: 5_000 });
    await first.next('coordinator');
    first.close(1001, 'replica draining: reconnect to another');
    const second = await gateway.connection(1);
    const frame = await second.next('coordinator');
    expect(frame.data).toEqual({ n: 1 });
    second.ok(frame, { taskId: 't-1', status: 'completed', output: 'moved' });
    expect(await output).toBe('moved');
  });

  it('after a 1001 that is not a replica draining (a proxy going away), rejects: the agent may have the task', async () => {
    const client = await open();
    const first = await gateway.connection(0);
    const output = client.call('summarizer', 'summarize', {}, { timeoutMs: 5_000 });
    await first.next('coordinator');
    first.close(1001, 'proxy reloading');
    const error = await failure(output);
    expect(error).toMatchObject({ code: 'UNAVAILABLE', retryable: true, dispatched: undefined });
    expect(error.details).toEqual({ closeCode: 1001, reason: 'proxy reloading' });
    await waitUntil(() => client.connectionState === 'connected', 'the client to reconnect');
    await client.ping();
    expect((await gateway.connection(1)).all('coordinator')).toEqual([]);
  });

  it('while still reconnecting at its deadline, ends with the error that stopped it, and sends nothing late', async () => {
    const client = await open();
    const first = await gateway.connection(0);
    const started = Date.now();
    const output = client.call('summarizer', 'summarize', {}, { timeoutMs: 300 });
    await first.next('coordinator');
    // The next upgrade is refused (a replica at its cap): the client waits a second before it tries again.
    gateway.refusals.push({
      status: 503,
      error: { code: 'UNAVAILABLE', message: 'at its cap', retryable: true, retryAfterMs: 1_000 },
    });
    first.close(1001, 'replica draining: reconnect to another');
    const error = await failure(output);
    expect(error).toMatchObject({ code: 'UNAVAILABLE', dispatched: false, details: { closeCode: 1001 } });
    expect(Date.now() - started).toBeLessThan(550);
    const second = await gateway.connection(1);
    await waitUntil(() => client.connectionState === 'connected', 'the client to reconnect');
    await client.ping();
    expect(second.all('coordinator')).toEqual([]);
  });

  it('after a close without 1001 (the replica died), rejects: the agent may have the task', async () => {
    const client = await open();
    const first = await gateway.connection(0);
    const output = client.call('summarizer', 'summarize', {}, { timeoutMs: 5_000 });
    await first.next('coordinator');
    first.socket.terminate();
    const error = await failure(output);
    expect(error).toMatchObject({ code: 'UNAVAILABLE', retryable: true, dispatched: undefined });
    expect((error.details as { closeCode: number }).closeCode).toBe(1006);
  });

  it('waits for the reconnection instead of failing while the client reconnects', async () => {
    const client = await open({ reconnect: { initialDelayMs: 150, maxDelayMs: 150 } });
    const first = await gateway.connection(0);
    first.socket.terminate();
    await nextEvent(client, 'disconnected');
    const output = client.call('summarizer', 'summarize', {}, { timeoutMs: 5_000 });
    const frame = await (await gateway.connection(1)).next('coordinator');
    (await gateway.connection(1)).ok(frame, { taskId: 't-1', status: 'completed', output: 'later' });
    expect(await output).toBe('later');
  });

  it('many calls waiting for the reconnection add no listener each, and all go out once it is back', async () => {
    const client = await open();
    // The first upgrade after the drop is refused: the client waits at least 300 ms before the next.
    gateway.refusals.push({
      status: 503,
      error: { code: 'UNAVAILABLE', message: 'at its cap', retryable: true, retryAfterMs: 300 },
    });
    (await gateway.connection(0)).socket.terminate();
    await nextEvent(client, 'disconnected');
    const outputs = Array.from({ length: 40 }, (_, n) =>
      client.call('summarizer', 'summarize', { n }, { timeoutMs: 5_000 }),
    );
    // Within the gateway's retryAfterMs (300 ms) the client must still be waiting: time has to pass.
    await delay(50);
    expect(client.connectionState).toBe('reconnecting');
    expect(client.listenerCount('connected') + client.listenerCount('closed')).toBe(0);
    const second = await gateway.connection(1);
    await waitUntil(() => second.all('coordinator').length === 40, '40 calls sent again');
    for (const frame of second.all('coordinator'))
      second.ok(frame, { taskId: 't', status: 'completed', output: frame.data });
    expect(await Promise.all(outputs)).toEqual(Array.from({ length: 40 }, (_, n) => ({ n })));
  });

  it('stops waiting to retry when aborted', async () => {
    const client = await open();
    const connection = await gateway.connection(0);
    const controller = new AbortController();
    const output = client.call('summarizer', 'summarize', {}, { timeoutMs: 5_000, signal: controller.signal });
    connection.fail(await connection.next('coordinator'), { ...busy, retryAfterMs: 2_000 });
    await nextEvent(client, 'call.retry');
    controller.abort();
    expect((await failure(output)).code).toBe('CANCELED');
  });
});

describe('frames from the gateway', () => {
  it('reports a frame that is not JSON on error, and keeps the connection', async () => {
    const client = await open();
    const errors: Error[] = [];
    client.on('error', (error) => errors.push(error));
    (await gateway.connection(0)).send('{not json');
    await client.ping();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(UnexpectedFrameError);
    expect(errors[0]?.message).toBe('the gateway sent a frame that is not JSON');
    expect((errors[0] as UnexpectedFrameError).frame).toBe('{not json');
  });

  it('never throws on junk when nobody listens for errors', async () => {
    const client = await open();
    const connection = await gateway.connection(0);
    connection.send('{not json');
    connection.send('[1, 2]');
    connection.send({ ok: 'maybe' });
    connection.send({ hello: 'world' });
    connection.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    connection.send({ event: 'task.status', taskId: 't-1', status: 'exploded' });
    connection.send({ event: 'from-the-future', x: 1 });
    expect((await client.ping()).pong).toBe(true);
  });

  it('ends a request at once when its response is malformed', async () => {
    const client = await open();
    const connection = await gateway.connection(0);
    const pending = client.taskGet('t-1');
    const frame = await connection.next('task.get');
    connection.send({ id: frame.id, ok: false, error: { message: 'no code' } });
    const error = await failure(pending);
    expect(error.code).toBe('INTERNAL');
    expect(error.message).toBe('the gateway sent a malformed response');
  });

  it('reports an error response that belongs to no request', async () => {
    const client = await open();
    const errors: Error[] = [];
    client.on('error', (error) => errors.push(error));
    (await gateway.connection(0)).send({
      id: null,
      ok: false,
      error: { code: 'BAD_REQUEST', message: 'taskId: required', retryable: false },
    });
    await client.ping();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ name: 'GatewayError', code: 'BAD_REQUEST', message: 'taskId: required' });
  });

  it('emits task.status events, and ignores events it does not know', async () => {
    const client = await open();
    const statuses = jest.fn();
    const errors = jest.fn();
    client.on('task.status', statuses);
    client.on('error', errors);
    const connection = await gateway.connection(0);
    connection.send({ event: 'from-the-future', x: 1 });
    connection.send({ event: 'task.status', taskId: 't-1', status: 'completed', output: { n: 5 } });
    connection.send({
      event: 'task.status',
      taskId: 't-2',
      status: 'failed',
      error: { code: 'AGENT_ERROR', message: 'boom', retryable: false },
    });
    await client.ping();
    expect(statuses.mock.calls).toEqual([
      [{ taskId: 't-1', status: 'completed', output: { n: 5 } }],
      [{ taskId: 't-2', status: 'failed', error: { code: 'AGENT_ERROR', message: 'boom', retryable: false } }],
    ]);
    expect(errors).not.toHaveBeenCalled();
  });

  it('waitForTask on many tasks adds no listener per wait, resolves each with its own end, and resubscribes each after a reconnection', async () => {
    const client = await open();
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      const first = await gateway.connection(0);
      gateway.script('task.subscribe', (frame, connection) =>
        connection.ok(frame, { taskId: frame.taskId, status: 'working' }),
      );
      const ids = Array.from({ length: 50 }, (_, n) => `t-${n}`);
      const outcomes = ids.map((taskId) => client.waitForTask(taskId));
      await waitUntil(() => first.all('task.subscribe').length === 50, '50 subscriptions');
      expect(client.listenerCount('task.status') + client.listenerCount('task.progress')).toBe(0);
      expect(client.listenerCount('connected')).toBe(0);
      // Half end on this connection, the rest after a reconnection, each from after its last event.
      for (const [n, taskId] of ids.entries()) {
        first.send({ event: 'task.status', taskId, status: 'working', cursor: `1-${n}` });
      }
      for (const taskId of ids.slice(0, 25))
        first.send({ event: 'task.status', taskId, status: 'completed', output: taskId, cursor: '2-0' });
      await client.ping();
      first.close(1012, 'restart');
      const second = await gateway.connection(1);
      await waitUntil(() => second.all('task.subscribe').length === 25, '25 subscriptions again');
      expect(second.all('task.subscribe').map((f) => [f.taskId, f.after])).toEqual(
        ids.slice(25).map((taskId, n) => [taskId, `1-${n + 25}`]),
      );
      for (const taskId of ids.slice(25))
        second.send({ event: 'task.status', taskId, status: 'failed', cursor: '2-0' });
      expect(await Promise.all(outcomes)).toEqual(
        ids.map((taskId, n) =>
          n < 25 ? { taskId, status: 'completed', output: taskId } : { taskId, status: 'failed' },
        ),
      );
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('reports a listener that throws on error, and keeps going', async () => {
    const client = await open();
    const errors: Error[] = [];
    client.on('error', (error) => errors.push(error));
    client.on('task.status', () => {
      throw new Error('listener bug');
    });
    (await gateway.connection(0)).send({ event: 'task.status', taskId: 't-1', status: 'working' });
    expect((await client.ping()).pong).toBe(true);
    expect(errors.map((error) => error.message)).toEqual(['listener bug']);
  });
});

describe('reconnection', () => {
  it('reconnects after 1012 with backoff and registers its agents again', async () => {
    const client = await open();
    const agent = client.agent('summarizer', { concurrency: 2, meta: { region: 'eu' } });
    agent.handle('summarize', (data) => data);
    await agent.register();
    expect(agent.instanceId).toBe('instance-1');

    const disconnected = nextEvent(client, 'disconnected');
    const reconnecting = nextEvent(client, 'reconnecting');
    const connected = nextEvent(client, 'connected');
    (await gateway.connection(0)).close(1012, 'service restart');

    expect(await disconnected).toEqual<DisconnectedInfo>({
      code: 1012,
      reason: 'service restart',
      willReconnect: true,
    });
    const retry: ReconnectingInfo = await reconnecting;
    expect(retry.attempt).toBe(1);
    expect(retry.delayMs).toBeGreaterThanOrEqual(0);
    expect(retry.delayMs).toBeLessThanOrEqual(FAST.initialDelayMs);
    const info: ConnectedInfo = await connected;
    expect(info.reconnected).toBe(true);
    expect(info.session?.sessionId).toBe('session-2');
    expect(client.connectionState).toBe('connected');

    const second = await gateway.connection(1);
    expect(second.frames.map((frame) => frame.action)).toEqual(['hello', 'register']);
    expect(second.all('register')[0]).toEqual({
      action: 'register',
      id: expect.any(Number),
      name: 'summarizer',
      tasks: ['summarize'],
      concurrency: 2,
      meta: { region: 'eu' },
    });
    expect(agent.instanceId).toBe('instance-2');
    expect((await client.ping()).pong).toBe(true);
  });

  it.each([1001, 1011, 1013])('reconnects after close code %i', async (code) => {
    const client = await open();
    const connected = nextEvent(client, 'connected');
    (await gateway.connection(0)).close(code);
    expect((await connected).reconnected).toBe(true);
  });

  it('backs off harder after 1013: it starts three steps up, at no less than half that step', async () => {
    const client = await open({ reconnect: { initialDelayMs: 10, maxDelayMs: 1000 } });
    const reconnecting = nextEvent(client, 'reconnecting');
    const connected = nextEvent(client, 'connected');
    (await gateway.connection(0)).close(1013, 'try again later');
    // Step 3 of 10 ms doubling: a cap of 80 ms, so 40 to 80 ms (a plain close would be 0 to 10 ms).
    const { delayMs } = await reconnecting;
    expect(delayMs).toBeGreaterThanOrEqual(40);
    expect(delayMs).toBeLessThanOrEqual(80);
    expect((await connected).reconnected).toBe(true);
  });

  it('waits the retryAfterMs of a refused upgrade (a replica at its connection cap) before trying again', async () => {
    const client = await open({ reconnect: { initialDelayMs: 10, maxDelayMs: 40 } });
    gateway.refusals.push({
      status: 503,
      error: {
        code: 'UNAVAILABLE',
        message: 'this replica is at its connection cap',
        retryable: true,
        retryAfterMs: 300,
      },
    });
    const delays: number[] = [];
    client.on('reconnecting', ({ delayMs }) => delays.push(delayMs));
    const connected = nextEvent(client, 'connected');
    (await gateway.connection(0)).close(1012);
    expect((await connected).reconnected).toBe(true);
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeLessThanOrEqual(10);
    // The second attempt waits what the refusal asked, plus jitter within the backoff's cap.
    expect(delays[1]).toBeGreaterThanOrEqual(300);
    expect(delays[1]).toBeLessThanOrEqual(300 + 20);
  });

  it('waits the Retry-After header of a refusal that is not the gateway’s JSON (a proxy’s 503 page)', async () => {
    const client = await open({ reconnect: { initialDelayMs: 10, maxDelayMs: 10 } });
    gateway.refusals.push({
      status: 503,
      raw: { body: '<html>Service Unavailable</html>', headers: { 'Content-Type': 'text/html', 'Retry-After': '1' } },
    });
    const delays: number[] = [];
    client.on('reconnecting', ({ delayMs }) => delays.push(delayMs));
    (await gateway.connection(0)).socket.terminate();
    await gateway.connection(1);
    // The first try is refused; the next waits the second the proxy asked for.
    expect(delays).toHaveLength(2);
    expect(delays[1]).toBeGreaterThanOrEqual(1_000);
  });

  it('does not start the backoff over after connections that drop at once (a flapping gateway)', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    try {
      const client = await open({ reconnect: { initialDelayMs: 40, maxDelayMs: 10_000 } });
      const delays: number[] = [];
      client.on('reconnecting', ({ delayMs }) => delays.push(delayMs));
      for (let i = 0; i < 4; i++) {
        (await gateway.connection(i)).socket.terminate();
        await gateway.connection(i + 1);
        await waitUntil(() => client.connectionState === 'connected', 'the client to reconnect');
      }
      // Half of each step's cap: 40, 80, 160, 320 ms.
      expect(delays).toEqual([20, 40, 80, 160]);
    } finally {
      jest.restoreAllMocks();
    }
  });

  it('reconnects after the connection is lost without a close frame (1006)', async () => {
    const client = await open();
    const disconnected = nextEvent(client, 'disconnected');
    const connected = nextEvent(client, 'connected');
    (await gateway.connection(0)).socket.terminate();
    expect((await disconnected).code).toBe(1006);
    expect((await connected).reconnected).toBe(true);
  });

  it('never reconnects after 1008', async () => {
    const client = await open();
    const disconnected = nextEvent(client, 'disconnected');
    const closed = nextEvent(client, 'closed');
    (await gateway.connection(0)).close(1008, 'credentials revoked');
    expect(await disconnected).toEqual({ code: 1008, reason: 'credentials revoked', willReconnect: false });
    expect(await closed).toEqual({ code: 1008, reason: 'the gateway closed the connection with 1008' });
    await delay(100); // ten initial backoff windows
    expect(gateway.connections).toHaveLength(1);
    expect(client.connectionState).toBe('closed');
  });

  it('does not reconnect when reconnection is off', async () => {
    const client = await open({ reconnect: false });
    const closed = nextEvent(client, 'closed');
    (await gateway.connection(0)).close(1012);
    expect((await closed).code).toBe(1012);
    // Nothing must happen: a window in which a reconnection would have started.
    await delay(50);
    expect(gateway.connections).toHaveLength(1);
  });

  it('stops when the gateway refuses the credentials on reconnection', async () => {
    await gateway.close();
    gateway = await FakeGateway.start({ apiKey: 'key-0123456789abcdef' });
    const client = await open({ apiKey: 'key-0123456789abcdef' });
    const errors: Error[] = [];
    client.on('error', (error) => errors.push(error));
    const closed = nextEvent(client, 'closed');
    gateway.apiKey = 'key-rotated-0123456789';
    (await gateway.connection(0)).close(1012);
    expect((await closed).reason).toBe('the gateway refused the credentials (UNAUTHENTICATED)');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('gives up after maxAttempts', async () => {
    const client = await open({ reconnect: { initialDelayMs: 5, maxDelayMs: 10, maxAttempts: 2 } });
    const attempts: ReconnectingInfo[] = [];
    client.on('reconnecting', (info) => attempts.push(info));
    client.on('error', () => undefined);
    const closed = nextEvent(client, 'closed');
    await gateway.close(); // the port now refuses connections
    expect((await closed).reason).toBe('gave up reconnecting after 2 attempts');
    expect(attempts.map((info) => info.attempt)).toEqual([1, 2]);
    expect(attempts[1]?.lastError).toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('drops a connection that stops showing signs of life, and reconnects', async () => {
    await gateway.close();
    gateway = await FakeGateway.start({ heartbeatMs: 40 }); // and it never pings
    const client = await open();
    const startedAt = Date.now();
    const disconnected = nextEvent(client, 'disconnected');
    const connected = nextEvent(client, 'connected');
    expect(await disconnected).toEqual({ code: 1006, reason: '', willReconnect: true });
    // Not before 2.5 heartbeats of silence (100 ms); the socket itself would never time out here.
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(95);
    expect((await connected).reconnected).toBe(true);
  });

  it('close() during the backoff stops reconnecting', async () => {
    const client = await open({ reconnect: { initialDelayMs: 200, maxDelayMs: 200 } });
    const reconnecting = nextEvent(client, 'reconnecting');
    (await gateway.connection(0)).close(1012);
    await reconnecting;
    await client.close();
    // Past the 200 ms backoff, when a reconnection would have started: time has to pass.
    await delay(250);
    expect(gateway.connections).toHaveLength(1);
    expect(client.connectionState).toBe('closed');
  });
});

describe('retryAfterHeaderMs', () => {
  it('reads delay-seconds and HTTP dates, and caps what it honours at five minutes', () => {
    const now = Date.parse('2026-12-02T10:00:00Z');
    expect(retryAfterHeaderMs('3', now)).toBe(3_000);
    expect(retryAfterHeaderMs(' 0 ', now)).toBe(0);
    expect(retryAfterHeaderMs('Wed, 02 Dec 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterHeaderMs('Wed, 02 Dec 2026 09:00:00 GMT', now)).toBe(0);
    expect(retryAfterHeaderMs('86400', now)).toBe(300_000);
    expect(retryAfterHeaderMs(['2', '9'], now)).toBe(2_000);
    expect(retryAfterHeaderMs('soon', now)).toBeUndefined();
    expect(retryAfterHeaderMs('-5', now)).toBeUndefined();
    expect(retryAfterHeaderMs(undefined, now)).toBeUndefined();
  });
});
