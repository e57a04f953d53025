import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentCard, formatSSEEvent, Role, SSE_HEADERS, type StreamResponse, type Task, TaskState } from '@a2a-js/sdk';
import { Client, ClientFactory, DefaultAgentCardResolver, JsonRpcTransportFactory } from '@a2a-js/sdk/client';
import { LegacyJsonRpcTransport } from '@a2a-js/sdk/compat/v0_3/client';
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
import { type Cluster, startAgent, startCluster, type TestAgent } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const ADMIN = 'bootstrap-admin-key-for-a2a-tests-01';
const SECRET = 'a-server-secret-of-at-least-32-characters!';

let cluster: Cluster;
const keys: Record<string, string> = {};
const sockets: TestSocket[] = [];

// One cluster for both sides of A2A: two replicas, and a worker for the async tasks A2A tasks are.
beforeAll(async () => {
  cluster = await startCluster({
    replicas: 2,
    workers: 1,
    auth: 'apikey',
    apiKeys: [ADMIN],
    // The outside agents listen on loopback.
    // Approvers' keys held to one request a second (burst 2), for the rate-limit test.
    env: {
      OPENCLAW_API_KEY_SECRET: SECRET,
      OPENCLAW_HTTP_AGENTS_ALLOW_PRIVATE: 'true',
      OPENCLAW_ROLE_RATES: 'approver=1/2',
    },
  });
  const url = cluster.gateways[0]!.httpUrl;
  for (const tenant of ['acme', 'globex']) {
    for (const role of ['caller', 'agent', 'approver', 'operator']) {
      const name = tenant === 'acme' ? role : `${tenant}-${role}`;
      keys[name] = await createApiKey(url, ADMIN, { name: `a2a-${tenant}-${role}`, role, tenant });
    }
  }
});
afterAll(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await cluster?.stop();
});

/**
 * Outside A2A agents (servers built with the official `@a2a-js/sdk`) registered by their Agent Card
 * and called by gateway callers like any agent: governed, audited, canceled, on two real replicas.
 */
describe('A2A agents outside the cluster', () => {
  let outside: OutsideA2a;

  beforeAll(async () => {
    outside = await startOutsideA2a();
  });
  afterAll(async () => {
    await outside?.close();
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

/**
 * The gateway as an A2A server: every agent is an A2A agent at /a2a/<agent>, driven by the official
 * `@a2a-js/sdk` client (A2A 1.0, and its v0.3 transport for the 0.3 method names) against two real
 * replicas and a worker. An A2A task is the gateway's async task.
 */
describe('A2A server', () => {
  const agents: TestAgent[] = [];
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.close()));
  });

  const withKey =
    (key: string): typeof fetch =>
    (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set('x-api-key', key);
      return fetch(input, { ...init, headers });
    };
  /** An SDK client of an agent, from its card on a replica; `polling`: SendMessage returns at once. */
  const a2a = (agent: string, key: string, replica = 0, polling = false): Promise<Client> => {
    const fetchImpl = withKey(keys[key] ?? key);
    return new ClientFactory({
      transports: [new JsonRpcTransportFactory({ fetchImpl })],
      cardResolver: new DefaultAgentCardResolver({ fetchImpl }),
      clientConfig: { polling },
    }).createFromUrl(`${cluster.gateways[replica]!.httpUrl}/a2a/${agent}/`);
  };
  const message = (value: unknown, metadata?: Record<string, unknown>) => ({
    message: {
      messageId: randomUUID(),
      role: Role.ROLE_USER,
      parts: [typeof value === 'string' ? text(value) : data(value)],
      contextId: '',
      taskId: '',
      metadata,
      extensions: [],
      referenceTaskIds: [],
    },
    tenant: '',
    configuration: undefined,
    metadata: undefined,
  });
  const raw = async (agent: string, body: unknown, key = 'caller'): Promise<Record<string, unknown>> => {
    const res = await fetch(`${cluster.gateways[0]!.httpUrl}/a2a/${agent}`, {
      method: 'POST',
      headers: { 'x-api-key': keys[key]!, 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return (await res.json()) as Record<string, unknown>;
  };

  /**
   * A native agent on replica 1: `quote` answers with what it got, `report` sends two progress
   * reports first, `hang` never answers (until canceled), `ask` asks a person (`INPUT_REQUIRED`).
   */
  const nativeAgent = async (name: string, key = 'agent'): Promise<TestAgent> => {
    const agent: TestAgent = await startAgent(cluster.gateways[1]!.url, {
      name,
      concurrency: 8,
      tasks: ['quote', 'report', 'hang', 'ask'],
      headers: { 'x-api-key': keys[key]! },
      inputSchemas: { quote: { type: 'object', properties: { sku: { type: 'string' } } } },
      answer: (task) => {
        if (task.task === 'hang') return undefined;
        if (task.task === 'ask') {
          const error = {
            message: 'which warehouse?',
            code: 'INPUT_REQUIRED',
            details: { options: ['north', 'south'] },
          };
          return { action: 'task.error', taskId: task.taskId, error };
        }
        if (task.task === 'report') {
          for (const stage of ['reading', 'writing']) {
            agent.socket.send({ action: 'task.progress', taskId: task.taskId, progress: { stage } });
          }
        }
        return { action: 'task.result', taskId: task.taskId, output: { got: task.data, task: task.task } };
      },
    });
    agents.push(agent);
    return agent;
  };
  const outputOf = (task: Task): unknown => {
    const content = task.artifacts[0]?.parts[0]?.content;
    return content?.$case === 'data' || content?.$case === 'text' ? content.value : undefined;
  };

  it("publishes an agent's Agent Card and runs a message as a task on an agent attached to the other replica", async () => {
    await nativeAgent('pricer');
    const client = await a2a('pricer', 'caller', 0);
    const card = await client.getAgentCard();
    expect(card.name).toBe('pricer');
    expect(card.capabilities?.streaming).toBe(true);
    expect(card.skills.map((s) => s.id)).toEqual(['ask', 'hang', 'quote', 'report']);
    expect(card.skills.find((s) => s.id === 'quote')?.description).toContain('"sku"');
    const endpoint = `${cluster.gateways[0]!.httpUrl}/a2a/pricer`;
    expect(card.supportedInterfaces).toEqual([
      expect.objectContaining({ url: endpoint, protocolBinding: 'JSONRPC', protocolVersion: '1.0' }),
      expect.objectContaining({ url: endpoint, protocolBinding: 'JSONRPC', protocolVersion: '0.3' }),
    ]);
    expect(Object.keys(card.securitySchemes)).toEqual(['apiKey', 'bearer']);

    const task = (await client.sendMessage(message({ sku: 'a-1' }, { 'openclaw/task': 'quote' }))) as Task;
    expect(task.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(outputOf(task)).toEqual({ got: { sku: 'a-1' }, task: 'quote' });
    // The A2A task is the gateway's task: same id, same output, seen over the WebSocket on the other replica.
    const socket = await TestSocket.open(cluster.gateways[1]!.url, { headers: { 'x-api-key': keys.caller! } });
    sockets.push(socket);
    expect(await socket.request({ action: 'task.get', id: 1, taskId: task.id })).toMatchObject({
      ok: true,
      result: { taskId: task.id, agent: 'pricer', task: 'quote', status: 'completed', output: { got: { sku: 'a-1' } } },
    });
    // Its context is its memory thread; the audit names A2A.
    expect(task.contextId).toMatch(/^[0-9a-f-]{36}$/);
    const trail = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'acme');
    expect(trail).toContainEqual(
      expect.objectContaining({
        type: 'task.submitted',
        details: expect.objectContaining({ agent: 'pricer', taskId: task.id, via: 'a2a' }),
      }),
    );
  });

  it("streams a task's status, progress and artifact, and closes the stream when it ends", async () => {
    await nativeAgent('reporter');
    const client = await a2a('reporter', 'caller', 1);
    const events: StreamResponse['payload'][] = [];
    for await (const event of client.sendMessageStream(message({ q: 1 }, { 'openclaw/task': 'report' }))) {
      events.push(event.payload);
    }
    // The task first (submitted, or working already), then its updates.
    expect(events[0]?.$case).toBe('task');
    const states = events.flatMap((e) => (e?.$case === 'statusUpdate' ? [e.value.status?.state] : []));
    expect(states[0]).toBe(TaskState.TASK_STATE_WORKING);
    expect(states.at(-1)).toBe(TaskState.TASK_STATE_COMPLETED);
    const progress = events.flatMap((e) =>
      e?.$case === 'statusUpdate' && e.value.status?.message
        ? e.value.status.message.parts.map((p) => (p.content?.$case === 'data' ? p.content.value : undefined))
        : [],
    );
    expect(progress).toEqual([{ stage: 'reading' }, { stage: 'writing' }]);
    const artifact = events.find((e) => e?.$case === 'artifactUpdate');
    expect(artifact?.$case === 'artifactUpdate' && artifact.value.artifact?.parts[0]?.content).toEqual({
      $case: 'data',
      value: { got: { q: 1 }, task: 'report' },
    });
    // The artifact comes before the last status.
    expect(events.at(-1)?.$case).toBe('statusUpdate');
  });

  it('resumes an async task from another replica, and cancels one that is running', async () => {
    const agent = await nativeAgent('runner');
    // Submitted on replica 0 without waiting; followed from replica 1 until it ends.
    const submitter = await a2a('runner', 'caller', 0, true);
    const submitted = (await submitter.sendMessage(message('go', { 'openclaw/task': 'report' }))) as Task;
    expect([TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_COMPLETED]).toContain(
      submitted.status?.state,
    );
    const elsewhere = await a2a('runner', 'caller', 1);
    const followed: StreamResponse['payload'][] = [];
    for await (const event of elsewhere.resubscribeTask({ id: submitted.id, tenant: '' })) followed.push(event.payload);
    expect(followed[0]?.$case).toBe('task');
    const last = followed.at(-1);
    expect(
      last?.$case === 'task'
        ? last.value.status?.state
        : last?.$case === 'statusUpdate'
          ? last.value.status?.state
          : '',
    ).toBe(TaskState.TASK_STATE_COMPLETED);
    const read = await elsewhere.getTask({ id: submitted.id, tenant: '', historyLength: undefined });
    expect(outputOf(read)).toEqual({ got: 'go', task: 'report' });

    // A task the agent holds: canceled through A2A, the agent is told.
    const hanging = (await submitter.sendMessage(message({}, { 'openclaw/task': 'hang' }))) as Task;
    await waitFor(async () => agent.received.some((t) => t.taskId === hanging.id), { what: 'the task at the agent' });
    const canceled = await elsewhere.cancelTask({ id: hanging.id, tenant: '', metadata: undefined });
    expect(canceled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    await agent.socket.nextEvent('task.cancel', 10_000);
    // An ended task cannot be canceled; another tenant does not see it.
    await expect(elsewhere.cancelTask({ id: hanging.id, tenant: '', metadata: undefined })).rejects.toThrow(
      /cannot be canceled/,
    );
    expect(
      await raw('runner', { jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: hanging.id } }, 'globex-caller'),
    ).toMatchObject({ error: { code: -32001 } });
    // Its tasks outlive the agent's connection: read once the agent has gone.
    await agent.close();
    await waitFor(async () => (await a2a('runner', 'caller').catch((e: Error) => e)) instanceof Error, {
      what: 'the agent to leave',
    });
    expect(outputOf(await elsewhere.getTask({ id: submitted.id, tenant: '', historyLength: undefined }))).toEqual({
      got: 'go',
      task: 'report',
    });
  });

  it('refuses bad credentials, other tenants and bad requests with clear errors', async () => {
    await expect(a2a('pricer', 'not-a-key-of-this-cluster')).rejects.toThrow(/401/);
    // Another tenant's agent is not there at all.
    await expect(a2a('pricer', 'globex-caller')).rejects.toThrow(/404/);
    // An approver sees the tenant's agents, so the card, but may not start a task.
    expect((await (await a2a('pricer', 'approver')).getAgentCard()).name).toBe('pricer');
    const byApprover = await raw(
      'pricer',
      {
        jsonrpc: '2.0',
        id: 1,
        method: 'SendMessage',
        params: {
          message: {
            messageId: randomUUID(),
            role: 'ROLE_USER',
            parts: [{ data: {} }],
            metadata: { 'openclaw/task': 'quote' },
          },
        },
      },
      'approver',
    );
    expect(byApprover).toMatchObject({ error: { code: -32000, data: { error: { code: 'FORBIDDEN' } } } });
    const unauthenticated = await fetch(`${cluster.gateways[0]!.httpUrl}/a2a/pricer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: {} }),
    });
    expect(unauthenticated.status).toBe(401);

    expect(await raw('pricer', '{not json')).toMatchObject({ id: null, error: { code: -32700 } });
    for (const method of ['Teleport', 'toString', '__proto__', 'constructor']) {
      expect(await raw('pricer', { jsonrpc: '2.0', id: 1, method, params: {} })).toMatchObject({
        id: 1,
        error: { code: -32601, message: `method '${method}' is not served` },
      });
    }
    const badEscape = await fetch(`${cluster.gateways[0]!.httpUrl}/a2a/%E0%A4%A/.well-known/agent-card.json`, {
      headers: { 'x-api-key': keys.caller! },
    });
    expect(badEscape.status).toBe(404);
    expect(
      await raw('pricer', { jsonrpc: '2.0', id: 2, method: 'CreateTaskPushNotificationConfig', params: {} }),
    ).toMatchObject({ error: { code: -32003 } });
    expect(await raw('pricer', { jsonrpc: '2.0', id: 3, method: 'SendMessage', params: {} })).toMatchObject({
      error: { code: -32602, message: "'message' must be an object" },
    });
    const send = (parts: unknown[], metadata?: unknown) =>
      raw('pricer', {
        jsonrpc: '2.0',
        id: 4,
        method: 'SendMessage',
        params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts, metadata } },
      });
    // Three tasks and none named; a task it does not have; a file part.
    expect(await send([{ text: 'hi' }])).toMatchObject({
      error: { code: -32602, message: expect.stringContaining('several tasks (ask, hang, quote, report)') },
    });
    expect(await send([{ text: 'hi' }], { 'openclaw/task': 'fly' })).toMatchObject({
      error: { code: -32602, message: expect.stringContaining("no task 'fly'") },
    });
    expect(await send([{ url: 'https://example.com/a.pdf' }], { 'openclaw/task': 'quote' })).toMatchObject({
      error: { code: -32005 },
    });
    expect(
      await raw('pricer', { jsonrpc: '2.0', id: 5, method: 'GetTask', params: { id: 'no-such-task' } }),
    ).toMatchObject({
      error: { code: -32001 },
    });
  });

  it("charges A2A messages to the principal's cluster-wide rate limit", async () => {
    // An approver's key (rate 1/s, burst 2), allowed to call agents by a role the policy binds to it.
    keys.metered = await createApiKey(cluster.gateways[0]!.httpUrl, ADMIN, {
      name: 'a2a-metered',
      role: 'approver',
      tenant: 'acme',
    });
    const hello = await TestSocket.open(cluster.gateways[0]!.url, { headers: { 'x-api-key': keys.metered } });
    const { result } = await hello.request({ action: 'hello', id: 'h' });
    await hello.close();
    const principal = (result as { principal: { id: string } }).principal.id;
    await applyPolicy(
      cluster,
      ADMIN,
      `roles:\n  metered:\n    inherits: [caller]\nbindings:\n  - role: metered\n    principals: ["${principal}"]\n`,
    );
    try {
      const send = () =>
        raw(
          'pricer',
          {
            jsonrpc: '2.0',
            id: 1,
            method: 'SendMessage',
            params: {
              message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data: { sku: 'r' } }] },
              metadata: { 'openclaw/task': 'quote' },
              configuration: { returnImmediately: true },
            },
          },
          'metered',
        );
      const answers = [await send(), await send(), await send()];
      expect(answers.slice(0, 2).every((a) => a.result !== undefined)).toBe(true);
      expect(answers[2]).toMatchObject({
        error: { code: -32000, data: { error: { code: 'RATE_LIMITED', retryable: true } } },
      });
    } finally {
      await applyPolicy(cluster, ADMIN, 'governance: {}\n');
    }
  });

  it('applies governance: a denied message is a rejected task, one held for approval is input-required', async () => {
    await applyPolicy(
      cluster,
      ADMIN,
      `
governance:
  rules:
    - name: no-bulk
      when: { agent: pricer, task: quote, data: { qty: { gt: 100 } } }
      verdict: deny
      reason: bulk quotes go through sales
    - name: big-orders
      when: { agent: pricer, task: quote, data: { qty: { gt: 10 } } }
      verdict: require-approval
      reason: orders over ten need a person
`,
    );
    try {
      const client = await a2a('pricer', 'caller', 0);
      const denied = (await client.sendMessage(message({ sku: 'a', qty: 500 }, { 'openclaw/task': 'quote' }))) as Task;
      expect(denied.status?.state).toBe(TaskState.TASK_STATE_REJECTED);
      const why = denied.status?.message?.parts[0]?.content;
      expect(why?.$case === 'text' && why.value).toMatch(/^POLICY_DENIED: .*bulk quotes go through sales/);

      // Held: the blocking call returns input-required, naming the approval; an approval lets it run.
      const held = (await client.sendMessage(message({ sku: 'a', qty: 20 }, { 'openclaw/task': 'quote' }))) as Task;
      expect(held.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
      const said = held.status?.message?.parts[0]?.content;
      expect(said?.$case === 'text' && said.value).toMatch(
        /^waiting for an approval \(rule:big-orders: orders over ten need a person\); approval /,
      );
      const approvalId = said?.$case === 'text' ? said.value.split('approval ').at(-1)! : '';
      // A message does not decide an approval, whoever sends it.
      const toHeld = {
        message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'go' }], taskId: held.id },
      };
      expect(
        await raw('pricer', { jsonrpc: '2.0', id: 'h', method: 'SendMessage', params: toHeld }, 'operator'),
      ).toMatchObject({
        error: { code: -32004, message: expect.stringContaining(`waits for approval '${approvalId}'`) },
      });
      const approver = await TestSocket.open(cluster.gateways[1]!.url, { headers: { 'x-api-key': keys.approver! } });
      sockets.push(approver);
      // Followed from the other replica: input-required first; approved, it runs and completes.
      const stream = (await a2a('pricer', 'caller', 1)).resubscribeTask({ id: held.id, tenant: '' });
      const stateOf = (p: StreamResponse['payload']) =>
        p?.$case === 'task' ? p.value.status?.state : p?.$case === 'statusUpdate' ? p.value.status?.state : undefined;
      const states = [stateOf((await stream.next()).value?.payload)];
      expect(
        await approver.request({ action: 'approval.decide', id: 'd', approvalId, decision: 'approve', reason: 'ok' }),
      ).toMatchObject({ ok: true });
      for await (const event of stream) states.push(stateOf(event.payload));
      expect(states[0]).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
      expect(states.at(-1)).toBe(TaskState.TASK_STATE_COMPLETED);
      const done = await client.getTask({ id: held.id, tenant: '', historyLength: undefined });
      expect(outputOf(done)).toEqual({ got: { sku: 'a', qty: 20 }, task: 'quote' });
    } finally {
      await applyPolicy(cluster, ADMIN, 'governance: {}\n');
    }
  });

  it('takes the answer to a task that asks for input as a message to that task, from a principal allowed to respond', async () => {
    await nativeAgent('clerk');
    const client = await a2a('clerk', 'caller', 0);
    const asking = (await client.sendMessage(message({ item: 7 }, { 'openclaw/task': 'ask' }))) as Task;
    expect(asking.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    const parts = asking.status?.message?.parts.map((p) => p.content);
    expect(parts?.[0]).toEqual({ $case: 'text', value: 'waiting for a human to answer: which warehouse?' });
    expect(parts?.[1]).toEqual({
      $case: 'data',
      value: { message: 'which warehouse?', details: { options: ['north', 'south'] } },
    });

    // On the wire (ProtoJSON) for the refusals; through the SDK for the answer that is taken.
    const answer = (value: unknown, taskId: string, contextId?: string) => ({
      message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ data: value }], taskId, contextId },
    });
    const send = (body: unknown, key: string) =>
      raw('clerk', { jsonrpc: '2.0', id: 'a', method: 'SendMessage', params: body }, key);
    expect(await send(answer('x', 5 as unknown as string), 'operator')).toMatchObject({
      error: { code: -32602, message: "'message.taskId' must be a task id" },
    });
    // Answering is `task:respond`: the caller that submitted it does not have it.
    expect(await send(answer({ warehouse: 'north' }, asking.id), 'caller')).toMatchObject({
      error: { code: -32000, data: { error: { code: 'FORBIDDEN' } } },
    });
    // Another tenant's operator does not see the task; a context that is not the task's is refused.
    expect(await send(answer({ warehouse: 'north' }, asking.id), 'globex-operator')).toMatchObject({
      error: { code: expect.any(Number) },
    });
    expect(await send(answer({ warehouse: 'north' }, asking.id, 'another-context'), 'operator')).toMatchObject({
      error: { code: -32602, message: expect.stringContaining('belongs to context') },
    });

    // An operator answers through the other replica; the blocking send returns the task completed with it.
    const operator = await a2a('clerk', 'operator', 1);
    const reply = message({ warehouse: 'north' });
    reply.message.taskId = asking.id;
    reply.message.contextId = asking.contextId;
    const done = (await operator.sendMessage(reply)) as Task;
    expect(done.id).toBe(asking.id);
    expect(done.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(outputOf(done)).toEqual({ warehouse: 'north' });
    // Streaming the answer: the task as it is now, then its events until it ends.
    const second = (await client.sendMessage(message({ item: 8 }, { 'openclaw/task': 'ask' }))) as Task;
    const streamed = message('south');
    streamed.message.taskId = second.id;
    const events: StreamResponse['payload'][] = [];
    for await (const event of operator.sendMessageStream(streamed)) events.push(event.payload);
    // (A task that ended before the stream began is sent once, as it is: then the task is also the last event.)
    expect(events[0]?.$case).toBe('task');
    const last = events.at(-1);
    const lastState = last?.$case === 'task' || last?.$case === 'statusUpdate' ? last.value.status?.state : undefined;
    expect(lastState).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(outputOf(await client.getTask({ id: second.id, tenant: '', historyLength: undefined }))).toBe('south');
    // Ended, it takes no more messages.
    expect(await send(answer({ warehouse: 'south' }, asking.id), 'operator')).toMatchObject({
      error: { code: -32004, message: expect.stringContaining('has ended (completed)') },
    });
    const trail = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'acme');
    expect(trail).toContainEqual(
      expect.objectContaining({
        type: 'task.responded',
        details: expect.objectContaining({ taskId: asking.id, via: 'a2a' }),
      }),
    );
  });

  it('accepts the A2A 0.3 method names (message/send, message/stream, tasks/get, tasks/cancel)', async () => {
    const fetchImpl = withKey(keys.caller!);
    const base = `${cluster.gateways[1]!.httpUrl}/a2a/pricer`;
    const card = await new DefaultAgentCardResolver({ fetchImpl }).resolve(`${base}/`);
    const legacy = new Client(new LegacyJsonRpcTransport({ endpoint: base, fetchImpl }), card);
    const task = (await legacy.sendMessage(message('plain text', { 'openclaw/task': 'report' }))) as Task;
    expect(task.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(outputOf(task)).toEqual({ got: 'plain text', task: 'report' });
    expect(outputOf(await legacy.getTask({ id: task.id, tenant: '', historyLength: undefined }))).toEqual({
      got: 'plain text',
      task: 'report',
    });
    const kinds: string[] = [];
    for await (const event of legacy.sendMessageStream(message([1, 2], { 'openclaw/task': 'report' }))) {
      kinds.push(event.payload?.$case ?? '');
    }
    expect(kinds[0]).toBe('task');
    expect(kinds).toContain('artifactUpdate');
    expect(kinds.at(-1)).toBe('statusUpdate');
    // On the wire: lower-case states, kinds, and `final` on the last status update.
    const wire = await raw('pricer', {
      jsonrpc: '2.0',
      id: 9,
      method: 'message/send',
      params: {
        message: {
          kind: 'message',
          messageId: randomUUID(),
          role: 'user',
          parts: [{ kind: 'data', data: { sku: 'z' } }],
        },
        metadata: { 'openclaw/task': 'quote' },
      },
    });
    expect(wire).toMatchObject({
      id: 9,
      result: {
        kind: 'task',
        status: { state: 'completed' },
        artifacts: [{ parts: [{ kind: 'data', data: { got: { sku: 'z' }, task: 'quote' } }] }],
      },
    });
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
