import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentCard, formatSSEEvent, Role, SSE_HEADERS, TaskState } from '@a2a-js/sdk';
import {
  AgentEvent,
  type AgentExecutor,
  DefaultRequestHandler,
  InMemoryTaskStore,
  JsonRpcTransportHandler,
  ServerCallContext,
  validateVersion,
} from '@a2a-js/sdk/server';
import { applyPolicy, auditTail, createApiKey, runCli } from '../helpers/cli';
import { type Cluster, startCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const ADMIN = 'bootstrap-admin-key-for-a2a-tests-01';
const SECRET = 'a-server-secret-of-at-least-32-characters!';

/**
 * Outside A2A agents (servers built with the official `@a2a-js/sdk`) registered by their Agent Card
 * and called by gateway callers like any agent: governed, audited, canceled, on two real replicas.
 */
describe('A2A agents outside the cluster', () => {
  let cluster: Cluster;
  let outside: OutsideA2a;
  const keys: Record<string, string> = {};
  const sockets: TestSocket[] = [];

  beforeAll(async () => {
    [cluster, outside] = await Promise.all([
      startCluster({
        replicas: 2,
        auth: 'apikey',
        apiKeys: [ADMIN],
        // The outside agents listen on loopback.
        env: { OPENCLAW_API_KEY_SECRET: SECRET, OPENCLAW_HTTP_AGENTS_ALLOW_PRIVATE: 'true' },
      }),
      startOutsideA2a(),
    ]);
    const url = cluster.gateways[0]!.httpUrl;
    for (const role of ['caller', 'agent']) {
      keys[role] = await createApiKey(url, ADMIN, { name: `a2a-${role}`, role, tenant: 'acme' });
    }
  });
  afterAll(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await outside?.close();
    await cluster?.stop();
  });

  const register = (name: string, cardUrl: string, ...more: string[]) =>
    runCli([
      ...['agent', 'register', '--name', name, '--a2a', cardUrl],
      ...['--gateway', cluster.gateways[0]!.httpUrl, '--api-key', keys.agent!, ...more],
    ]);
  const caller = async (): Promise<TestSocket> => {
    const socket = await TestSocket.open(cluster.gateways[1]!.url, { headers: { 'x-api-key': keys.caller! } });
    sockets.push(socket);
    return socket;
  };

  it('registers an A2A agent by its Agent Card; its skills are tasks a caller on another replica runs', async () => {
    const registered = await register('translator', outside.cardUrl('echo'));
    expect(registered.stderr).toBe('');
    expect(registered.stdout).toBe(`registered A2A agent 'translator' -> ${outside.endpoint('echo')} (skills: echo)\n`);
    const socket = await caller();
    // The agent answers with a message: its one data part is the output; a string goes as text.
    expect(
      await socket.request({
        action: 'coordinator',
        id: 1,
        agent: 'translator',
        task: 'echo',
        data: { word: 'hallo' },
      }),
    ).toMatchObject({ ok: true, result: { status: 'completed', output: { got: { word: 'hallo' }, task: 'echo' } } });
    expect(
      await socket.request({ action: 'coordinator', id: 2, agent: 'translator', task: 'echo', data: 'hallo' }),
    ).toMatchObject({ ok: true, result: { output: 'echo: hallo' } });
    // A task that works for a while: read until it completes, its artifact the output.
    expect(await register('worker', outside.cardUrl('slow'))).toMatchObject({ code: 0 });
    expect(
      await socket.request({ action: 'coordinator', id: 3, agent: 'worker', task: 'work', data: { steps: 3 } }),
    ).toMatchObject({ ok: true, result: { output: 'done after 3 steps' } });
    // Skills it does not have are not tasks.
    expect(
      await socket.request({ action: 'coordinator', id: 4, agent: 'translator', task: 'summarize', data: 'x' }),
    ).toMatchObject({ ok: false, error: { code: 'AGENT_NOT_FOUND' } });
    const trail = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'acme');
    expect(trail).toContainEqual(
      expect.objectContaining({
        type: 'http-agent.registered',
        details: expect.objectContaining({ agent: 'translator', url: `a2a+${outside.endpoint('echo')}` }),
      }),
    );
  });

  it("cancels the A2A task when the caller cancels, and a failed A2A task is the agent's error", async () => {
    await register('worker', outside.cardUrl('slow'));
    const socket = await caller();
    const call = socket.request({
      action: 'coordinator',
      id: 'c',
      agent: 'worker',
      task: 'work',
      data: { steps: 200 },
    });
    await waitFor(() => outside.running.size > 0, { what: 'the outside task to start' });
    const [a2aTaskId] = [...outside.running];
    expect(await socket.request({ action: 'task.cancel', id: 'x', requestId: 'c' })).toMatchObject({ ok: true });
    expect(await call).toMatchObject({ ok: false, error: { code: 'CANCELED' } });
    await waitFor(() => outside.canceled.has(a2aTaskId!), { what: 'the A2A task to be canceled' });

    expect(
      await socket.request({ action: 'coordinator', id: 'f', agent: 'worker', task: 'work', data: { fail: true } }),
    ).toMatchObject({
      ok: false,
      error: { code: 'AGENT_ERROR', message: "the A2A agent's task ended TASK_STATE_FAILED: no can do" },
    });
  });

  it('applies governance to calls to an A2A agent, and refuses a card it cannot use', async () => {
    await register('translator', outside.cardUrl('echo'));
    await applyPolicy(
      cluster,
      ADMIN,
      'governance:\n  rules:\n    - name: no-secrets\n      when: { agent: translator, data: { secret: { exists: true } } }\n      verdict: deny\n',
    );
    const socket = await caller();
    const before = outside.messages;
    expect(
      await socket.request({ action: 'coordinator', id: 1, agent: 'translator', task: 'echo', data: { secret: 'x' } }),
    ).toMatchObject({ ok: false, error: { code: 'POLICY_DENIED' } });
    expect(outside.messages).toBe(before);
    await applyPolicy(cluster, ADMIN, 'governance: {}\n');

    const missing = await register('ghost', `${outside.base}/a2a/nobody/.well-known/agent-card.json`);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('could not be read: HTTP 404');
    const noSkill = await register('picky', outside.cardUrl('echo'), '--tasks', 'translate');
    expect(noSkill.stderr).toContain('names no skill of those named in tasks');
  });
});

interface OutsideA2a {
  base: string;
  cardUrl(agent: string): string;
  endpoint(agent: string): string;
  /** A2A tasks of the slow agent running now, and those canceled. */
  running: Set<string>;
  canceled: Set<string>;
  /** Messages the agents received. */
  messages: number;
  close(): Promise<void>;
}

const text = (value: string) => ({
  content: { $case: 'text' as const, value },
  mediaType: 'text/plain',
  filename: '',
  metadata: undefined,
});
const data = (value: unknown) => ({
  content: { $case: 'data' as const, value },
  mediaType: 'application/json',
  filename: '',
  metadata: undefined,
});

/**
 * Two A2A 1.0 agents as an outside team would build them with `@a2a-js/sdk` (its request handler and
 * JSON-RPC transport on node:http): `echo` answers with a message; `slow` works in steps as a task,
 * then completes with an artifact (or fails, when asked), and honours a cancel.
 */
async function startOutsideA2a(): Promise<OutsideA2a> {
  const http: HttpServer = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const state = { running: new Set<string>(), canceled: new Set<string>(), messages: 0 };
  const message = (contextId: string, taskId: string, parts: ReturnType<typeof text>[]) => ({
    messageId: randomUUID(),
    contextId,
    taskId,
    role: Role.ROLE_AGENT,
    parts,
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  });
  const executors: Record<string, AgentExecutor> = {
    echo: {
      async execute(ctx, bus) {
        state.messages += 1;
        const part = ctx.userMessage.parts[0]?.content;
        const task = (ctx.userMessage.metadata as { 'openclaw/task'?: string } | undefined)?.['openclaw/task'];
        const reply = part?.$case === 'data' ? data({ got: part.value, task }) : text(`echo: ${String(part?.value)}`);
        bus.publish(AgentEvent.message(message(ctx.contextId, '', [reply as ReturnType<typeof text>])));
        bus.finished();
      },
      async cancelTask() {},
    },
    slow: {
      async execute(ctx, bus) {
        state.messages += 1;
        const { taskId, contextId } = ctx;
        const part = ctx.userMessage.parts[0]?.content;
        const asked = (part?.$case === 'data' ? part.value : {}) as { steps?: number; fail?: boolean };
        const status = (s: TaskState, words?: string) => ({
          state: s,
          timestamp: new Date().toISOString(),
          message: words === undefined ? undefined : message(contextId, taskId, [text(words)]),
        });
        bus.publish(
          AgentEvent.task({
            id: taskId,
            contextId,
            status: status(TaskState.TASK_STATE_SUBMITTED),
            artifacts: [],
            history: [ctx.userMessage],
            metadata: undefined,
          }),
        );
        state.running.add(taskId);
        const steps = asked.steps ?? 1;
        for (let i = 1; i <= steps; i++) {
          await new Promise((resolve) => setTimeout(resolve, 25));
          if (state.canceled.has(taskId)) return;
          bus.publish(
            AgentEvent.statusUpdate({
              taskId,
              contextId,
              status: status(TaskState.TASK_STATE_WORKING, `step ${i}`),
              metadata: undefined,
            }),
          );
        }
        state.running.delete(taskId);
        if (asked.fail) {
          bus.publish(
            AgentEvent.statusUpdate({
              taskId,
              contextId,
              status: status(TaskState.TASK_STATE_FAILED, 'no can do'),
              metadata: undefined,
            }),
          );
        } else {
          bus.publish(
            AgentEvent.artifactUpdate({
              taskId,
              contextId,
              append: false,
              lastChunk: true,
              metadata: undefined,
              artifact: {
                artifactId: 'result',
                name: 'result',
                description: '',
                parts: [text(`done after ${steps} steps`)],
                metadata: undefined,
                extensions: [],
              },
            }),
          );
          bus.publish(
            AgentEvent.statusUpdate({
              taskId,
              contextId,
              status: status(TaskState.TASK_STATE_COMPLETED),
              metadata: undefined,
            }),
          );
        }
        bus.finished();
      },
      async cancelTask(taskId, bus) {
        state.canceled.add(taskId);
        state.running.delete(taskId);
        bus.publish(
          AgentEvent.statusUpdate({
            taskId,
            contextId: '',
            metadata: undefined,
            status: { state: TaskState.TASK_STATE_CANCELED, message: undefined, timestamp: new Date().toISOString() },
          }),
        );
        bus.finished();
      },
    },
  };
  const agents = Object.fromEntries(
    Object.entries(executors).map(([name, executor]) => {
      const card = {
        name,
        description: `the ${name} agent`,
        version: '1.0.0',
        supportedInterfaces: [
          { url: `${base}/a2a/${name}`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: '1.0' },
        ],
        provider: undefined,
        capabilities: { streaming: true, pushNotifications: false, extensions: [] },
        securitySchemes: {},
        securityRequirements: [],
        defaultInputModes: ['text/plain', 'application/json'],
        defaultOutputModes: ['text/plain', 'application/json'],
        skills: [
          {
            id: name === 'echo' ? 'echo' : 'work',
            name,
            description: `what ${name} does`,
            tags: [],
            examples: [],
            inputModes: [],
            outputModes: [],
            securityRequirements: [],
          },
        ],
        signatures: [],
      } as unknown as AgentCard;
      const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), executor);
      return [name, { card, rpc: new JsonRpcTransportHandler(handler) }];
    }),
  );
  http.on('request', async (req, res) => {
    const match = /^\/a2a\/([a-z]+)(\/\.well-known\/agent-card\.json)?$/.exec(req.url ?? '');
    const agent = match ? agents[match[1]!] : undefined;
    if (!agent) return void res.writeHead(404).end();
    if (req.method === 'GET' && match![2]) {
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify(AgentCard.toJSON(agent.card)));
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const version = String(req.headers['a2a-version'] ?? '0.3');
    try {
      validateVersion(version, agent.card, 'JSONRPC');
    } catch (error) {
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: JsonRpcTransportHandler.mapToJSONRPCError(error) }));
    }
    const out = await agent.rpc.handle(
      Buffer.concat(chunks).toString('utf8'),
      new ServerCallContext({ requestedVersion: version }),
    );
    if (out && typeof (out as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
      res.writeHead(200, SSE_HEADERS);
      for await (const event of out as AsyncIterable<unknown>) res.write(formatSSEEvent(event as never));
      res.end();
    } else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
  });
  return {
    base,
    cardUrl: (agent) => `${base}/a2a/${agent}/.well-known/agent-card.json`,
    endpoint: (agent) => `${base}/a2a/${agent}`,
    running: state.running,
    canceled: state.canceled,
    get messages() {
      return state.messages;
    },
    close: async () => {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}
