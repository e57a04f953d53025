import { applyPolicy, createApiKey, runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { taskEnd } from '../helpers/tasks';
import { TestSocket } from '../helpers/ws-client';

const ADMIN = 'admin-key-for-task-permission-tests';
const SECRET = 's'.repeat(40);

/** Who sees and acts on async tasks, with real API keys: submitters, other callers, operators, tenants. */
describe('async task permissions', () => {
  let cluster: Cluster;
  let keys: { caller: string; other: string; operator: string; agent: string; foreign: string };

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      workers: 1,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_API_KEY_SECRET: SECRET },
    });
    const http = cluster.gateways[0]!.httpUrl;
    keys = {
      caller: await createApiKey(http, ADMIN, { name: 'shop', role: 'caller' }),
      other: await createApiKey(http, ADMIN, { name: 'other', role: 'caller' }),
      operator: await createApiKey(http, ADMIN, { name: 'ops', role: 'operator' }),
      agent: await createApiKey(http, ADMIN, { name: 'bot', role: 'agent' }),
      foreign: await createApiKey(http, ADMIN, { name: 'ops-elsewhere', role: 'operator', tenant: 'globex' }),
    };
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('notifies operators of a task waiting for a human; only they may answer; other principals and tenants see nothing', async () => {
    const [a, b] = cluster.gateways;
    const headers = (key: string) => ({ headers: { 'x-api-key': key } });
    const agent = await startAgent(a!.url, {
      name: 'triage',
      headers: { 'x-api-key': keys.agent },
      answer: (t) => ({
        action: 'task.error',
        taskId: t.taskId,
        error: { code: 'INPUT_REQUIRED', message: 'which queue?' },
      }),
    });
    const operator = await TestSocket.open(b!.url, headers(keys.operator));
    const foreignOperator = await TestSocket.open(b!.url, headers(keys.foreign));
    const caller = await TestSocket.open(a!.url, headers(keys.caller));
    const other = await TestSocket.open(a!.url, headers(keys.other));
    await Promise.all([operator, foreignOperator, caller, other].map((s) => s.request({ action: 'ping', id: 0 })));

    const reply = await caller.request({ action: 'coordinator', id: 1, agent: 'triage', task: 'route', mode: 'async' });
    expect(reply.ok).toBe(true);
    const taskId = (reply.result as { taskId: string }).taskId;
    const notice = await operator.nextFrame(
      (f) => f.event === 'task.status' && f.taskId === taskId && f.status === 'input-required',
      15_000,
      'the operator notice',
    );
    expect(notice).toMatchObject({
      question: { message: 'which queue?' },
      submittedBy: expect.stringMatching(/^apikey:/),
    });

    // Another caller of the tenant may not see it, nor answer it; the operator of another tenant neither.
    expect(await other.request({ action: 'task.get', id: 2, taskId })).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
    expect(await caller.request({ action: 'task.respond', id: 3, taskId, output: 'x' })).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN' },
    });
    expect(await foreignOperator.request({ action: 'task.respond', id: 4, taskId, output: 'x' })).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });
    const foreignList = await runCli([
      'task',
      'list',
      '--status',
      'input-required',
      '--json',
      '--url',
      b!.httpUrl,
      '--api-key',
      keys.foreign,
    ]);
    expect(JSON.parse(foreignList.stdout)).toEqual([]);

    // The operator sees the tenant's waiting tasks and answers.
    const list = await runCli([
      'task',
      'list',
      '--status',
      'input-required',
      '--json',
      '--url',
      b!.httpUrl,
      '--api-key',
      keys.operator,
    ]);
    expect((JSON.parse(list.stdout) as { taskId: string }[]).map((t) => t.taskId)).toContain(taskId);
    expect(await operator.request({ action: 'task.respond', id: 5, taskId, output: 'queue-7' })).toMatchObject({
      ok: true,
    });
    const done = await caller.nextFrame(
      (f) => f.event === 'task.status' && f.taskId === taskId && f.status === 'completed',
      15_000,
      'the task completed',
    );
    expect(done.output).toBe('queue-7');
    const record = await caller.request({ action: 'task.get', id: 6, taskId });
    expect(record.result).toMatchObject({ status: 'completed', output: 'queue-7', response: { output: 'queue-7' } });
    // Another tenant's events never reached the foreign operator.
    expect(foreignOperator.pending().filter((f) => f.taskId === taskId)).toEqual([]);
    await Promise.all([operator.close(), foreignOperator.close(), caller.close(), other.close(), agent.close()]);
  });

  it("streams another principal's task to an operator watching it from another replica, from the moment it subscribes", async () => {
    const [a, b] = [cluster.gateways[0]!, cluster.gateways[1]!];
    const headers = (key: string) => ({ headers: { 'x-api-key': key } });
    const agent = await startAgent(b.url, {
      name: 'watched-async',
      answer: 'manual',
      headers: headers(keys.agent).headers,
    });
    const caller = await TestSocket.open(a.url, headers(keys.caller));
    const submitted = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'watched-async',
      task: 'work',
      data: 1,
      mode: 'async',
    });
    const taskId = (submitted.result as { taskId: string }).taskId;
    const task = await agent.socket.nextEvent('task');
    expect(task.taskId).toBe(taskId);
    // The operator is not the submitter: its replica follows the task's own channel.
    const operator = await TestSocket.open(b.url, headers(keys.operator));
    expect(await operator.request({ action: 'task.subscribe', id: 2, taskId })).toMatchObject({
      ok: true,
      result: { taskId, status: 'working' },
    });
    agent.socket.send({ action: 'task.progress', taskId, progress: { done: 50 } });
    expect(await operator.nextEvent('task.progress')).toMatchObject({ taskId, progress: { done: 50 } });
    agent.socket.send({ action: 'task.result', taskId, output: { ok: true } });
    expect(await operator.nextEvent('task.status')).toMatchObject({
      taskId,
      status: 'completed',
      output: { ok: true },
    });
    expect(await taskEnd(caller, taskId)).toMatchObject({ status: 'completed' });
    await Promise.all([caller.close(), operator.close(), agent.close()]);
  });

  it('refuses a workflow whose steps call an agent the principal may not call', async () => {
    const agentSocket = await TestSocket.open(cluster.gateways[0]!.url, { headers: { 'x-api-key': keys.agent } });
    const reply = await agentSocket.request({
      action: 'workflow.start',
      id: 1,
      workflow: { steps: [{ id: 's', agent: 'billing', task: 'charge' }] },
    });
    expect(reply).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN', message: "missing permission 'agent:invoke:billing'" },
    });
    await agentSocket.close();
  });

  it("authorizes every case of a switch at start, and a plan's steps as the workflow's starter, over WebSocket and HTTP", async () => {
    const [a, b] = cluster.gateways;
    const planner = await createApiKey(a!.httpUrl, ADMIN, { name: 'planner-user', role: 'agent' });
    await applyPolicy(
      cluster,
      ADMIN,
      [
        'roles:',
        '  planning:',
        '    permissions: ["agent:invoke:planner", "agent:invoke:upper"]',
        'bindings:',
        '  - role: planning',
        `    principals: [apikey:${planner.slice(4, 16)}]`,
      ].join('\n'),
    );
    let plan: unknown;
    const admin = { headers: { 'x-api-key': ADMIN } };
    const agents = [
      await startAgent(a!.url, {
        name: 'planner',
        ...admin,
        answer: (t) => ({ action: 'task.result', taskId: t.taskId, output: plan }),
      }),
      await startAgent(b!.url, { name: 'upper', ...admin }),
      await startAgent(b!.url, { name: 'vault', ...admin }),
    ];
    const socket = await TestSocket.open(b!.url, { headers: { 'x-api-key': planner } });
    const routed = await socket.request({
      action: 'workflow.start',
      id: 1,
      workflow: {
        steps: [
          {
            id: 'route',
            switch: 'input.kind',
            cases: { a: [{ id: 'up', agent: 'upper', task: 't' }], b: [{ id: 'open', agent: 'vault', task: 't' }] },
          },
        ],
      },
    });
    expect(routed).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN', message: "missing permission 'agent:invoke:vault'" },
    });

    const workflow = { steps: [{ id: 'plan', plan: { agent: 'planner', task: 'plan' } }] };
    plan = { steps: [{ id: 'open', agent: 'vault', task: 'open' }] };
    const started = await socket.request({ action: 'workflow.start', id: 2, workflow });
    const denied = await taskEnd(socket, (started.result as { taskId: string }).taskId);
    expect(denied).toMatchObject({
      status: 'failed',
      error: { details: { step: 'plan', error: { code: 'BAD_REQUEST' } } },
    });
    expect((denied.error as { message: string }).message).toContain(
      "the workflow's starter may not call agent 'vault' (missing permission 'agent:invoke:vault')",
    );
    expect(agents[2]!.received).toHaveLength(0);

    // The same over HTTP: the plan is checked against the same principal.
    const http = await fetch(`${a!.httpUrl}/v1/workflows`, {
      method: 'POST',
      headers: { 'x-api-key': planner, 'content-type': 'application/json' },
      body: JSON.stringify({ workflow, input: 'x' }),
    });
    expect(http.status).toBe(202);
    const { taskId } = (await http.json()) as { taskId: string };
    await socket.request({ action: 'task.subscribe', id: 3, taskId });
    expect(await taskEnd(socket, taskId)).toMatchObject({ status: 'failed' });
    expect(agents[2]!.received).toHaveLength(0);

    plan = { steps: [{ id: 'up', agent: 'upper', task: 'shout' }] };
    const allowed = await socket.request({ action: 'workflow.start', id: 4, workflow, input: 'hi' });
    expect(await taskEnd(socket, (allowed.result as { taskId: string }).taskId)).toMatchObject({
      status: 'completed',
      output: { echo: 'hi', by: 'upper' },
    });
    await Promise.all([socket.close(), ...agents.map((x) => x.close())]);
  });
});
