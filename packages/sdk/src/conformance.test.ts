import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type WebSocket from 'ws';
import { WebSocketServer } from 'ws';
import type { AgentHandle, TaskHandler } from './agent-handle';
import { GatewayError } from './errors';
import { GatewayClient } from './gateway-client';

/**
 * Runs the protocol's client conformance vectors (packages/protocol/conformance, whose README is the
 * format) against this SDK and a scripted gateway on a real WebSocket server. The Python SDK runs the
 * same files.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Frame = { [key: string]: Json };

interface Case {
  name: string;
  hello?: 'auto' | 'script';
  do: Frame & { op: string };
  script: Frame[];
  outcome?: { returns?: Json; raises?: Frame; pending?: true };
}

const VECTORS = join(__dirname, '..', '..', 'protocol', 'conformance');
const STEP_TIMEOUT_MS = 2_000;
const HELLO_RESULT = {
  protocol: 1,
  sessionId: 'session-1',
  replica: 'replica-a',
  principal: { id: 'anonymous', tenant: 'default', roles: ['admin'] },
  limits: { maxFrameBytes: 1_048_576, heartbeatMs: 0 },
  features: ['state', 'memory', 'cache'],
};

/** Whether `actual` holds every field of `expected` (the README's matching rules). */
function matches(expected: Json, actual: Json | undefined): boolean {
  if (expected === '$any') return actual !== undefined;
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual) || actual === undefined) return false;
    return Object.entries(expected).every(([key, value]) =>
      value === '$absent' ? !(key in actual) || actual[key] === undefined : matches(value, actual[key]),
    );
  }
  return JSON.stringify(expected) === JSON.stringify(actual);
}

/** One connection of the scripted gateway: the frames the client sent, in order. */
class Connection {
  private readonly frames: Frame[] = [];
  private readonly waiters: ((frame: Frame) => void)[] = [];
  closed = false;

  constructor(
    readonly socket: WebSocket,
    autoHello: boolean,
  ) {
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame;
      if (autoHello && frame.action === 'hello') {
        socket.send(JSON.stringify({ id: frame.id ?? null, ok: true, result: HELLO_RESULT }));
        return;
      }
      const waiter = this.waiters.shift();
      if (waiter) waiter(frame);
      else this.frames.push(frame);
    });
    socket.on('close', () => {
      this.closed = true;
    });
  }

  next(timeoutMs: number): Promise<Frame | undefined> {
    const frame = this.frames.shift();
    if (frame) return Promise.resolve(frame);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        resolve(undefined);
      }, timeoutMs);
      const waiter = (received: Frame) => {
        clearTimeout(timer);
        resolve(received);
      };
      this.waiters.push(waiter);
    });
  }
}

/** The scripted gateway: a WebSocket server that hands each new connection to the script. */
class ScriptedGateway {
  readonly connections: Connection[] = [];
  private readonly waiters: ((connection: Connection) => void)[] = [];
  private server!: Server;
  private wss!: WebSocketServer;
  url = '';

  async start(autoHello: boolean): Promise<void> {
    this.server = createServer();
    this.wss = new WebSocketServer({ server: this.server });
    this.wss.on('connection', (socket) => {
      const connection = new Connection(socket, autoHello);
      this.connections.push(connection);
      this.waiters.shift()?.(connection);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The connection after the `count` first ones, waiting up to `timeoutMs` for it. */
  connection(count: number, timeoutMs: number): Promise<Connection | undefined> {
    if (this.connections.length > count) return Promise.resolve(this.connections[count]);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      this.waiters.push((connection) => {
        clearTimeout(timer);
        resolve(connection);
      });
    });
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise((resolve) => this.wss.close(resolve));
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `"$id"` anywhere in a frame becomes the id of the last frame the script expected. */
function withId(frame: Json, id: Json | undefined): Json {
  if (frame === '$id') return id ?? null;
  if (Array.isArray(frame)) return frame.map((item) => withId(item, id));
  if (frame !== null && typeof frame === 'object') {
    return Object.fromEntries(Object.entries(frame).map(([key, value]) => [key, withId(value, id)]));
  }
  return frame;
}

/** A handler that behaves as the case says (the README's table of behaviours). */
function handler(behaviour: Frame): TaskHandler {
  return async (data, ctx) => {
    if (behaviour.echo === true) return data;
    if (Array.isArray(behaviour.progress)) for (const value of behaviour.progress) ctx.progress(value);
    if (behaviour.raises) {
      const { code, message, retryable } = behaviour.raises as Frame;
      // An error with a string `code` (and `retryable`) is how a handler reports its own code.
      if (typeof code === 'string') throw Object.assign(new Error(String(message)), { code, retryable });
      throw new Error(String(message));
    }
    if (behaviour.context === true) {
      return {
        taskId: ctx.taskId,
        task: ctx.task,
        attempt: ctx.attempt,
        from: ctx.from,
        deadline: ctx.deadline,
        traceparent: ctx.traceparent ?? null,
        thread: ctx.thread ?? null,
      };
    }
    if (behaviour.awaitCancel === true) {
      return new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => reject(new Error('gave up')), { once: true }),
      );
    }
    return behaviour.returns;
  };
}

/** Starts what the case asks of the client. @returns its promise (undefined for `serve` and `connect`). */
/** The fields of the README's operations, as the cases give them. */
interface Operation {
  op: string;
  agent: string;
  task: string;
  data?: Json;
  timeoutMs?: number;
  thread?: string;
  cache?: boolean;
  idempotencyKey?: string;
  transparentRetry?: boolean;
  taskId: string;
  namespace: string;
  key: string;
  value?: Json;
  ttlMs?: number;
  ifVersion?: number;
  entries: { role: string; content: Json }[];
  after?: number;
  last?: number;
  approvalId: string;
  decision: 'approve' | 'reject';
  reason?: string;
  concurrency?: number;
  handlers: Record<string, Frame>;
}

function start(client: GatewayClient, action: Frame & { op: string }, agents: AgentHandle[]): Promise<unknown> {
  const a = action as unknown as Operation;
  switch (action.op) {
    case 'connect':
      return Promise.resolve(undefined);
    case 'call':
      return client.call(a.agent, a.task, a.data, {
        timeoutMs: a.timeoutMs,
        thread: a.thread,
        cache: a.cache,
        idempotencyKey: a.idempotencyKey,
        transparentRetry: a.transparentRetry,
      });
    case 'submit':
      return client.submit(a.agent, a.task, a.data, {
        timeoutMs: a.timeoutMs,
        idempotencyKey: a.idempotencyKey,
        thread: a.thread,
      });
    case 'wait':
      return client.waitForTask(a.taskId);
    case 'cancel':
      return client.taskCancel(a.taskId);
    case 'stateGet':
      return client.state.get(a.namespace, a.key).then((entry) => entry ?? null);
    case 'stateSet':
      return client.state.set(a.namespace, a.key, a.value, { ttlMs: a.ttlMs, ifVersion: a.ifVersion });
    case 'memoryAppend':
      return client.memory.append(String(a.thread), a.entries);
    case 'memoryRead':
      return client.memory.read(String(a.thread), { after: a.after, last: a.last });
    case 'decide':
      return client.approvalDecide(a.approvalId, a.decision, a.reason);
    case 'serve': {
      const agent = client.agent(a.agent, a.concurrency === undefined ? {} : { concurrency: a.concurrency });
      for (const [task, behaviour] of Object.entries(a.handlers)) {
        agent.handle(task, handler(behaviour));
      }
      agents.push(agent);
      void agent.register().catch(() => undefined);
      return Promise.resolve(undefined);
    }
    default:
      throw new Error(`unknown op ${action.op}`);
  }
}

async function run(testCase: Case): Promise<void> {
  const gateway = new ScriptedGateway();
  const autoHello = testCase.hello !== 'script';
  await gateway.start(autoHello);
  const client = new GatewayClient({ url: gateway.url, reconnect: { initialDelayMs: 10, maxDelayMs: 40 } });
  client.on('error', () => undefined);
  const agents: AgentHandle[] = [];
  let outcome: { value: unknown } | { error: unknown } | undefined;
  try {
    const started = client.start();
    let connection = await gateway.connection(0, STEP_TIMEOUT_MS);
    if (!connection) throw new Error('the client did not connect');
    let seen = 1;
    let doing: Promise<void> | undefined;
    const begin = () => {
      doing = start(client, testCase.do, agents).then(
        (value) => {
          outcome = { value };
        },
        (error: unknown) => {
          outcome = { error };
        },
      );
    };
    if (autoHello) {
      await started;
      begin();
    } else {
      void started.then(begin, () => undefined);
    }
    let lastId: Json | undefined;
    for (const [index, step] of testCase.script.entries()) {
      const where = `step ${index + 1} ${JSON.stringify(step)}`;
      if (step.expect !== undefined) {
        const frame = await connection.next(STEP_TIMEOUT_MS);
        if (!frame) throw new Error(`${where}: the client sent nothing`);
        if (!matches(step.expect, frame)) throw new Error(`${where}: the client sent ${JSON.stringify(frame)}`);
        lastId = frame.id;
      } else if (step.send !== undefined) {
        connection.socket.send(JSON.stringify(withId(step.send, lastId)));
      } else if (step.sendRaw !== undefined) {
        connection.socket.send(String(step.sendRaw));
      } else if (step.close !== undefined) {
        connection.socket.close(Number(step.close), String(step.reason ?? ''));
      } else if (step.drop !== undefined) {
        connection.socket.terminate();
      } else if (step.expectReconnect !== undefined) {
        const next = await gateway.connection(seen, STEP_TIMEOUT_MS);
        if (!next) throw new Error(`${where}: the client did not connect again`);
        connection = next;
        seen += 1;
      } else if (step.expectNoReconnect !== undefined) {
        const next = await gateway.connection(seen, Number(step.withinMs));
        if (next) throw new Error(`${where}: the client connected again`);
      } else if (step.expectSilence !== undefined) {
        const frame = await connection.next(Number(step.expectSilence));
        if (frame) throw new Error(`${where}: the client sent ${JSON.stringify(frame)}`);
      } else if (step.settled !== undefined) {
        const until = Date.now() + STEP_TIMEOUT_MS;
        while (outcome === undefined && Date.now() < until) await delay(5);
        if (outcome === undefined) throw new Error(`${where}: the operation has not ended`);
      } else {
        throw new Error(`${where}: unknown step`);
      }
    }
    const expected = testCase.outcome;
    if (expected?.pending) {
      expect(outcome).toBeUndefined();
    } else if (expected) {
      await Promise.race([doing, delay(STEP_TIMEOUT_MS)]);
      if (outcome === undefined) throw new Error('the operation has not ended');
      if (expected.raises) {
        expect(outcome).toHaveProperty('error');
        const error = (outcome as { error: unknown }).error;
        expect(error).toBeInstanceOf(GatewayError);
        const { code, message, retryable, retryAfterMs, details } = error as GatewayError;
        const fields = JSON.parse(JSON.stringify({ code, message, retryable, retryAfterMs, details })) as Frame;
        if (!matches(expected.raises, fields)) {
          throw new Error(`raised ${JSON.stringify(fields)}, expected ${JSON.stringify(expected.raises)}`);
        }
      } else {
        if ('error' in outcome) throw outcome.error;
        expect(JSON.parse(JSON.stringify(outcome.value ?? null))).toEqual(expected.returns);
      }
    }
  } finally {
    await client.close();
    await gateway.close();
  }
}

const files = readdirSync(VECTORS).filter((name) => name.endsWith('.json'));

describe.each(files)('conformance: %s', (file) => {
  const { cases } = JSON.parse(readFileSync(join(VECTORS, file), 'utf8')) as { cases: Case[] };
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, testCase) => {
    await run(testCase);
  });
});
