import { connect, InputRequired } from '@openclaw/sdk';
import { Queue } from 'bullmq';
import { runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster, type TestAgent } from '../helpers/cluster';
import { taskEnd } from '../helpers/tasks';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

async function start(socket: TestSocket, workflow: object, input: unknown = null): Promise<string> {
  const reply = await socket.request({ action: 'workflow.start', id: 'wf', workflow, input });
  if (reply.ok !== true) throw new Error(`workflow.start failed: ${JSON.stringify(reply)}`);
  expect(reply.result).toMatchObject({ status: 'submitted' });
  return (reply.result as { taskId: string }).taskId;
}

describe('workflows', () => {
  let cluster: Cluster;
  const agents: TestAgent[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 3, workers: 2, workerEnv: { OPENCLAW_WORKER_LOCK_MS: '2000' } });
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.close()));
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('runs the data pipeline fetch, clean, report over agents on three replicas with two workers', async () => {
    const [a, b, c] = cluster.gateways;
    agents.push(
      await startAgent(a!.url, {
        name: 'fetcher',
        answer: (t) => ({
          action: 'task.result',
          taskId: t.taskId,
          output: { rows: [' a ', 'b ', ' c'], source: t.data },
        }),
      }),
      await startAgent(b!.url, {
        name: 'cleaner',
        answer: (t) => ({
          action: 'task.result',
          taskId: t.taskId,
          output: { rows: (t.data as { rows: string[] }).rows.map((r) => r.trim()) },
        }),
      }),
      await startAgent(c!.url, {
        name: 'reporter',
        answer: (t) => ({
          action: 'task.result',
          taskId: t.taskId,
          output: {
            report: `${(t.data as { rows: string[] }).rows.length} rows: ${(t.data as { rows: string[] }).rows.join(',')}`,
          },
        }),
      }),
    );
    const caller = await TestSocket.open(b!.url);
    const taskId = await start(
      caller,
      {
        name: 'pipeline',
        steps: [
          { id: 'fetch', agent: 'fetcher', task: 'fetch' },
          { id: 'clean', agent: 'cleaner', task: 'clean' },
          { id: 'report', agent: 'reporter', task: 'report' },
        ],
      },
      { url: 'https://example.test/data.csv' },
    );
    const end = await taskEnd(caller, taskId);
    expect(end).toMatchObject({ status: 'completed', output: { report: '3 rows: a,b,c' } });
    expect(agents[0]!.received[0]).toMatchObject({ data: { url: 'https://example.test/data.csv' }, attempt: 1 });
    expect(agents[1]!.received[0]!.data).toEqual({
      rows: [' a ', 'b ', ' c'],
      source: { url: 'https://example.test/data.csv' },
    });
    const record = (await caller.request({ action: 'task.get', id: 2, taskId })).result as {
      kind: string;
      steps: { id: string; status: string; tasks: { status: string; agent: string }[] }[];
    };
    expect(record.kind).toBe('workflow');
    expect(record.steps.map((s) => [s.id, s.status, s.tasks[0]!.agent, s.tasks[0]!.status])).toEqual([
      ['fetch', 'completed', 'fetcher', 'completed'],
      ['clean', 'completed', 'cleaner', 'completed'],
      ['report', 'completed', 'reporter', 'completed'],
    ]);
    await caller.close();
  });

  it('fans out and fans in on a quorum, canceling the branch it no longer needs', async () => {
    const [a, b] = cluster.gateways;
    agents.push(
      await startAgent(a!.url, { name: 'voter-1' }),
      await startAgent(b!.url, { name: 'voter-2' }),
      await startAgent(b!.url, { name: 'voter-3', answer: () => undefined }),
    );
    const caller = await TestSocket.open(a!.url);
    const taskId = await start(
      caller,
      {
        steps: [
          {
            id: 'vote',
            parallel: [
              { id: 'v1', agent: 'voter-1', task: 'vote' },
              { id: 'v2', agent: 'voter-2', task: 'vote' },
              { id: 'v3', agent: 'voter-3', task: 'vote', timeoutMs: 60_000 },
            ],
            join: { mode: 'quorum' },
          },
        ],
      },
      'ballot',
    );
    const end = await taskEnd(caller, taskId);
    expect(end.status).toBe('completed');
    expect(Object.keys(end.output as object).sort()).toEqual(['v1', 'v2']);
    // The straggler is told to stop.
    await agents[2]!.socket.nextEvent('task.cancel', 10_000);
    await caller.close();
  });

  it('skips a failed step with the continue policy, and fails the workflow with the fail policy', async () => {
    const [a] = cluster.gateways;
    agents.push(
      await startAgent(a!.url, {
        name: 'broken',
        answer: (t) => ({
          action: 'task.error',
          taskId: t.taskId,
          error: { code: 'DOWN', message: 'enricher is down' },
        }),
      }),
      await startAgent(a!.url, { name: 'echo-last' }),
    );
    const caller = await TestSocket.open(a!.url);
    const skipped = await start(
      caller,
      {
        steps: [
          { id: 'enrich', agent: 'broken', task: 'enrich', onFailure: 'continue' },
          { id: 'finish', agent: 'echo-last', task: 'finish' },
        ],
      },
      { order: 7 },
    );
    const done = await taskEnd(caller, skipped);
    // The next step got the input the skipped one got.
    expect(done).toMatchObject({ status: 'completed', output: { echo: { order: 7 } } });
    const record = (await caller.request({ action: 'task.get', id: 3, taskId: skipped })).result as {
      steps: { id: string; status: string; error?: { message: string } }[];
    };
    expect(record.steps[0]).toMatchObject({ id: 'enrich', status: 'skipped', error: { message: 'enricher is down' } });

    const failing = await start(caller, {
      steps: [
        { id: 'enrich', agent: 'broken', task: 'enrich', onFailure: 'fail' },
        { id: 'finish', agent: 'echo-last', task: 'finish' },
      ],
    });
    const failed = await taskEnd(caller, failing);
    expect(failed).toMatchObject({
      status: 'failed',
      error: { code: 'AGENT_ERROR', message: "step 'enrich' failed: enricher is down", details: { step: 'enrich' } },
    });
    expect(agents[1]!.received).toHaveLength(1);
    await caller.close();
  });

  it('escalates a customer query through technical support to a human, each agent reading and extending the conversation’s memory', async () => {
    const [a, b, c] = cluster.gateways;
    // The agents (SDK clients on three replicas) get the conversation from its memory thread, not
    // from the call's data, and add their part to it.
    const clients = await Promise.all([a!, b!, c!].map((g) => connect({ url: g.url })));
    const query = clients[0]!.agent('query-agent');
    query.handle('triage', async (_data, ctx) => {
      const [first] = (await ctx.memory?.read({ last: 100 })) ?? [];
      const technical = /refund|error/.test(String(first?.content));
      await ctx.memory?.append({ role: 'query-agent', content: technical ? 'for technical support' : 'answered' });
      return { route: technical ? 'technical' : 'answered' };
    });
    const support = clients[1]!.agent('tech-support');
    support.handle('answer', async (_data, ctx) => {
      const history = (await ctx.memory?.read()) ?? [];
      await ctx.memory?.append({ role: 'tech-support', content: 'a refund needs a person' });
      throw new InputRequired('refunds need a human', { customer: 'c-9', seen: history.map((e) => e.role) });
    });
    const mailer = clients[2]!.agent('mailer');
    mailer.handle('send', async (answer, ctx) => {
      const history = (await ctx.memory?.read()) ?? [];
      await ctx.memory?.append({ role: 'mailer', content: `sent: ${String(answer)}` });
      return { sent: answer, after: history.map((e) => e.role) };
    });
    await Promise.all([query.register(), support.register(), mailer.register()]);

    const customer = await TestSocket.open(a!.url, {});
    const thread = `case-${Date.now()}`;
    await customer.request({
      action: 'memory.append',
      id: 'm',
      thread,
      entries: [{ role: 'customer', content: 'I want a refund for order 7' }],
    });
    const started = await customer.request({
      action: 'workflow.start',
      id: 'wf',
      thread,
      workflow: {
        name: 'customer-service',
        steps: [
          { id: 'query', agent: 'query-agent', task: 'triage' },
          { id: 'support', agent: 'tech-support', task: 'answer', escalation: { timeoutMs: 600_000 } },
          { id: 'reply', agent: 'mailer', task: 'send' },
        ],
      },
    });
    const taskId = (started.result as { taskId: string }).taskId;
    // The workflow shows it waits for a human.
    const waiting = await customer.nextFrame(
      (f) => f.event === 'task.status' && f.taskId === taskId && f.status === 'input-required',
      20_000,
      'the workflow in input-required',
    );
    expect(waiting.question).toMatchObject({ step: 'support' });
    const list = await runCli(['task', 'list', '--status', 'input-required', '--json', '--url', b!.httpUrl]);
    const escalated = (JSON.parse(list.stdout) as { taskId: string; parentId?: string; question: unknown }[]).find(
      (t) => t.parentId === taskId,
    );
    // Technical support saw the customer and the query agent in the thread.
    expect(escalated?.question).toEqual({
      message: 'refunds need a human',
      details: { customer: 'c-9', seen: ['customer', 'query-agent'] },
    });
    const respond = await runCli([
      'task',
      'respond',
      escalated!.taskId,
      '--text',
      'Refund approved: 20 EUR',
      '--url',
      b!.httpUrl,
    ]);
    expect(respond.code).toBe(0);
    const end = await taskEnd(customer, taskId);
    expect(end).toMatchObject({
      status: 'completed',
      output: { sent: 'Refund approved: 20 EUR', after: ['customer', 'query-agent', 'tech-support'] },
    });
    const memory = await customer.request({ action: 'memory.read', id: 'r', thread });
    expect((memory.result as { entries: { seq: number; role: string }[] }).entries.map((e) => [e.seq, e.role])).toEqual(
      [
        [1, 'customer'],
        [2, 'query-agent'],
        [3, 'tech-support'],
        [4, 'mailer'],
      ],
    );
    await customer.close();
    await Promise.all(clients.map((client) => client.close()));
  });

  it('shows which step waits for a human, for whom and since when, and no attempts once it is done', async () => {
    const [a, b] = cluster.gateways;
    agents.push(
      await startAgent(a!.url, {
        name: 'triage-bot',
        answer: (t) => ({
          action: 'task.error',
          taskId: t.taskId,
          error: { code: 'INPUT_REQUIRED', message: 'is this a refund?' },
        }),
      }),
      await startAgent(b!.url, { name: 'closer' }),
    );
    const caller = await TestSocket.open(a!.url);
    const taskId = await start(caller, {
      name: 'triage-flow',
      steps: [
        { id: 'triage', agent: 'triage-bot', task: 'triage', escalation: { timeoutMs: 600_000 } },
        { id: 'close', agent: 'closer', task: 'close' },
      ],
    });
    type View = {
      status: string;
      waiting?: Record<string, unknown>[];
      steps: { id: string; status: string; tasks: { taskId: string; status: string }[] }[];
    };
    const view = await waitFor(
      async () => {
        const record = (await caller.request({ action: 'task.get', id: 'g', taskId })).result as View;
        return record.status === 'input-required' && record.waiting ? record : undefined;
      },
      { what: 'the workflow waiting for a human, with what it waits for' },
    );
    const childId = view.steps[0]!.tasks[0]!.taskId;
    const child = (await caller.request({ action: 'task.get', id: 'c', taskId: childId })).result as {
      status: string;
      updatedAt: number;
      escalateUntil: number;
    };
    expect(child.status).toBe('input-required');
    expect(view.steps.map((s) => [s.id, s.status, s.tasks[0]!.status])).toEqual([
      ['triage', 'input-required', 'input-required'],
    ]);
    const waiting = [
      {
        step: 'triage',
        taskId: childId,
        agent: 'triage-bot',
        needs: 'answer',
        permission: 'task:respond',
        message: 'is this a refund?',
        since: child.updatedAt,
        until: child.escalateUntil,
      },
    ];
    expect(view.waiting).toEqual(waiting);
    const http = (await (await fetch(`${b!.httpUrl}/v1/tasks/${taskId}`)).json()) as View;
    expect(http.waiting).toEqual(waiting);
    expect(http.steps[0]).toMatchObject({ id: 'triage', status: 'input-required' });

    const since = new Date(child.updatedAt).toISOString();
    const show = await runCli(['task', 'show', taskId, '--url', b!.httpUrl]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(
      `waiting   step triage needs an answer (task:respond: openclaw task respond) since ${since}, task ${childId} (triage-bot), until ${new Date(child.escalateUntil).toISOString()}, "is this a refund?"`,
    );
    expect(show.stdout).toContain('step triage: input-required\n');
    expect(show.stdout).toContain(`  ${childId} triage-bot input-required\n`);
    const list = await runCli(['task', 'list', '--status', 'input-required', '--url', b!.httpUrl]);
    expect(list.code).toBe(0);
    const row = list.stdout.split('\n').find((line) => line.startsWith(taskId));
    // Cells: task, kind, agent, task name, attempts (none of a workflow's own), updated, detail.
    expect(row?.split(/ {2,}/)).toEqual([
      taskId,
      'workflow',
      '-',
      'triage-flow',
      '-',
      expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      `step triage needs an answer (task:respond: openclaw task respond) since ${since}`,
    ]);

    // The answer, given to the workflow, goes to its waiting step.
    const respond = await runCli(['task', 'respond', taskId, '--text', 'yes, a refund', '--url', b!.httpUrl]);
    expect(respond.code).toBe(0);
    const end = await taskEnd(caller, taskId);
    expect(end).toMatchObject({ status: 'completed', output: { echo: 'yes, a refund' } });
    const done = await runCli(['task', 'show', taskId, '--url', b!.httpUrl]);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain('status    completed\n');
    expect(done.stdout).not.toContain('attempts');
    expect(done.stdout).not.toContain('waiting');
    expect(done.stdout).toContain(`step triage: completed\n  ${childId} triage-bot completed\nstep close: completed\n`);
    await caller.close();
  });

  it('goes on past a step whose human never answered when its escalation says continue', async () => {
    const [a] = cluster.gateways;
    agents.push(
      await startAgent(a!.url, {
        name: 'unsure',
        answer: (t) => ({
          action: 'task.error',
          taskId: t.taskId,
          error: { code: 'INPUT_REQUIRED', message: 'help?' },
        }),
      }),
      await startAgent(a!.url, { name: 'fallback' }),
    );
    const caller = await TestSocket.open(a!.url);
    const taskId = await start(
      caller,
      {
        steps: [
          { id: 'ask', agent: 'unsure', task: 'ask', escalation: { timeoutMs: 300, onTimeout: 'continue' } },
          { id: 'fallback', agent: 'fallback', task: 'reply' },
        ],
      },
      'original input',
    );
    const end = await taskEnd(caller, taskId);
    expect(end).toMatchObject({ status: 'completed', output: { echo: 'original input' } });
    const record = (await caller.request({ action: 'task.get', id: 2, taskId })).result as {
      steps: { id: string; status: string; error?: { code: string } }[];
    };
    expect(record.steps[0]).toMatchObject({ id: 'ask', status: 'skipped', error: { code: 'TIMEOUT' } });
    await caller.close();
  });

  it('cancels a workflow during a step: the agent is told, the step and the workflow end canceled', async () => {
    const [a] = cluster.gateways;
    agents.push(await startAgent(a!.url, { name: 'slowpoke', answer: 'manual' }));
    const caller = await TestSocket.open(a!.url);
    const taskId = await start(caller, { steps: [{ id: 'slow', agent: 'slowpoke', task: 'wait', timeoutMs: 60_000 }] });
    const task = await agents[0]!.socket.nextEvent('task', 20_000);
    const reply = await caller.request({ action: 'task.cancel', id: 5, taskId }, 10_000);
    expect(reply).toMatchObject({ ok: true, result: { status: 'canceled' } });
    const cancel = await agents[0]!.socket.nextEvent('task.cancel', 10_000);
    expect(cancel.taskId).toBe(task.taskId);
    expect((await taskEnd(caller, taskId)).status).toBe('canceled');
    const step = await caller.request({ action: 'task.get', id: 6, taskId: task.taskId as string });
    expect(step.result).toMatchObject({ status: 'canceled' });
    await caller.close();
  });

  it('never leaves a workflow waiting on a stalled step: its deadline ends it', async () => {
    const [a] = cluster.gateways;
    agents.push(await startAgent(a!.url, { name: 'black-hole', answer: () => undefined }));
    const caller = await TestSocket.open(a!.url);
    const taskId = await start(caller, {
      deadlineMs: 1500,
      steps: [{ id: 'stuck', agent: 'black-hole', task: 'wait', timeoutMs: 600_000 }],
    });
    const end = await taskEnd(caller, taskId);
    expect(end).toMatchObject({ status: 'failed', error: { code: 'TIMEOUT', details: { step: 'stuck' } } });
    await agents[0]!.socket.nextEvent('task.cancel', 10_000);
    await caller.close();
  });

  it('queues a step again when its job was lost, instead of waiting for it forever', async () => {
    const [a] = cluster.gateways;
    agents.push(await startAgent(a!.url, { name: 'prompt', answer: 'manual' }));
    const caller = await TestSocket.open(a!.url);
    const taskId = await start(caller, {
      steps: [
        {
          id: 'both',
          parallel: [
            { id: 'late', agent: 'not-yet', task: 't', retry: { attempts: 5, backoffMs: 60_000 } },
            { id: 'now', agent: 'prompt', task: 't' },
          ],
        },
      ],
    });
    // The branch whose agent is missing waits a minute for its next attempt.
    const lateId = await waitFor(
      async () => {
        const record = (await caller.request({ action: 'task.get', id: 'g', taskId })).result as {
          steps?: { tasks: { taskId: string; stepId: string; attempts: number }[] }[];
        };
        const late = record.steps?.[0]?.tasks.find((t) => t.stepId === 'late');
        return late && late.attempts >= 1 ? late.taskId : undefined;
      },
      { what: 'the first attempt of the late branch' },
    );
    // Its job disappears from the queue (as after a botched manual cleanup).
    const connection = cluster.redis.client();
    const queue = new Queue('tasks', { connection, prefix: `${cluster.keyPrefix}:{q}` });
    await waitFor(async () => (await queue.remove(lateId)) === 1, { what: 'the late job removed' });
    await queue.close();
    connection.disconnect();
    agents.push(await startAgent(a!.url, { name: 'not-yet' }));
    const task = await agents[0]!.socket.nextEvent('task', 10_000);
    agents[0]!.socket.send({ action: 'task.result', taskId: task.taskId, output: 'now' });
    const end = await taskEnd(caller, taskId, 20_000);
    expect(end).toMatchObject({ status: 'completed', output: { now: 'now', late: { echo: null } } });
    await caller.close();
  });

  it('refuses an invalid definition with the failing field named', async () => {
    const caller = await TestSocket.open(cluster.gateways[0]!.url);
    const reply = await caller.request({
      action: 'workflow.start',
      id: 1,
      workflow: {
        steps: [
          { id: 'x', agent: 'a', task: 't' },
          { id: 'x', agent: 'b', task: 't' },
        ],
      },
    });
    expect(reply).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(JSON.stringify(reply.error)).toContain("step id 'x' is used twice");
    await caller.close();
  });

  it('routes by a switch on an earlier output and skips a step whose condition does not hold', async () => {
    const [a, b] = cluster.gateways;
    agents.push(
      await startAgent(a!.url, {
        name: 'classifier',
        answer: (t) => ({
          action: 'task.result',
          taskId: t.taskId,
          output: { route: (t.data as { kind: string }).kind, score: 3 },
        }),
      }),
      await startAgent(b!.url, { name: 'billing' }),
      await startAgent(b!.url, { name: 'fallback' }),
      await startAgent(a!.url, { name: 'auditor' }),
    );
    const caller = await TestSocket.open(a!.url);
    const workflow = {
      steps: [
        { id: 'classify', agent: 'classifier', task: 'classify' },
        {
          id: 'route',
          switch: 'steps.classify.output.route',
          cases: { billing: [{ id: 'bill', agent: 'billing', task: 'handle' }], ignore: [] },
          default: [{ id: 'other', agent: 'fallback', task: 'handle' }],
        },
        {
          id: 'audit',
          agent: 'auditor',
          task: 'check',
          when: {
            any: [
              { path: 'input.audit', eq: true },
              { path: 'steps.classify.output.score', gt: 5 },
            ],
          },
        },
      ],
    };
    const run = async (input: object) => {
      const taskId = await start(caller, workflow, input);
      const end = await taskEnd(caller, taskId);
      const record = (await caller.request({ action: 'task.get', id: `g-${taskId}`, taskId })).result as {
        steps: { id: string; status: string; case?: string; reason?: string; tasks: { agent: string }[] }[];
      };
      return { end, steps: record.steps.map((s) => [s.id, s.status, s.case ?? s.reason ?? '', s.tasks.length]) };
    };

    const billing = await run({ kind: 'billing', audit: true });
    expect(billing.end).toMatchObject({
      status: 'completed',
      output: { echo: { echo: { route: 'billing', score: 3 }, by: 'billing' }, by: 'auditor' },
    });
    expect(billing.steps).toEqual([
      ['classify', 'completed', '', 1],
      ['route', 'completed', 'billing', 0],
      ['bill', 'completed', '', 1],
      ['audit', 'completed', '', 1],
    ]);

    const other = await run({ kind: 'shipping' });
    expect(other.end).toMatchObject({ status: 'completed', output: { by: 'fallback' } });
    expect(other.steps).toEqual([
      ['classify', 'completed', '', 1],
      ['route', 'completed', 'default', 0],
      ['other', 'completed', '', 1],
      ['audit', 'skipped', 'condition', 0],
    ]);

    // An empty case: nothing more runs for the switch; the classifier's output is the result.
    const ignored = await run({ kind: 'ignore' });
    expect(ignored.end).toMatchObject({ status: 'completed', output: { route: 'ignore', score: 3 } });
    expect(agents[1]!.received).toHaveLength(1);
    expect(agents[2]!.received).toHaveLength(1);
    expect(agents[3]!.received).toHaveLength(1);
    await caller.close();
  });

  it('runs the steps a planner agent returns, and refuses a plan that is not a valid one', async () => {
    const [a, b] = cluster.gateways;
    let plan: unknown;
    agents.push(
      await startAgent(a!.url, {
        name: 'planner',
        answer: (t) => ({
          action: 'task.result',
          taskId: t.taskId,
          output: typeof plan === 'function' ? (plan as () => unknown)() : plan,
        }),
      }),
      await startAgent(b!.url, {
        name: 'upper',
        answer: (t) => ({ action: 'task.result', taskId: t.taskId, output: String(t.data).toUpperCase() }),
      }),
      await startAgent(a!.url, {
        name: 'exclaim',
        answer: (t) => ({ action: 'task.result', taskId: t.taskId, output: `${String(t.data)}!` }),
      }),
    );
    const caller = await TestSocket.open(b!.url);
    const workflow = {
      steps: [
        { id: 'plan', plan: { agent: 'planner', task: 'plan' }, maxSteps: 3 },
        { id: 'finish', agent: 'exclaim', task: 'finish' },
      ],
    };
    plan = {
      input: 'hello',
      steps: [
        { id: 'up', agent: 'upper', task: 'upper' },
        { id: 'twice', agent: 'exclaim', task: 'e', when: { path: 'steps.plan.output.input', eq: 'hello' } },
      ],
    };
    const good = await start(caller, workflow, { goal: 'shout' });
    expect(await taskEnd(caller, good)).toMatchObject({ status: 'completed', output: 'HELLO!!' });
    expect(agents[0]!.received[0]!.data).toEqual({ goal: 'shout' });
    const record = (await caller.request({ action: 'task.get', id: 1, taskId: good })).result as {
      steps: { id: string; status: string; planned?: string[] }[];
    };
    expect(record.steps.map((s) => [s.id, s.status, s.planned])).toEqual([
      ['plan', 'completed', ['up', 'twice']],
      ['up', 'completed', undefined],
      ['twice', 'completed', undefined],
      ['finish', 'completed', undefined],
    ]);

    const refused = async (bad: unknown, message: string, step = 'plan') => {
      plan = bad;
      const taskId = await start(caller, workflow, null);
      const end = await taskEnd(caller, taskId);
      expect(end).toMatchObject({
        status: 'failed',
        error: { code: 'AGENT_ERROR', details: { step, error: { code: 'BAD_REQUEST' } } },
      });
      expect((end.error as { message: string }).message).toContain(message);
    };
    await refused({ steps: [{ id: 'x', agent: 'Not A Name', task: 't' }] }, 'steps.0.agent');
    await refused({ steps: [{ id: 'finish', agent: 'upper', task: 't' }] }, "step id 'finish' is used twice");
    await refused({ steps: [{ id: 'plan', agent: 'upper', task: 't' }] }, "step id 'plan' is used twice");
    await refused(
      { steps: Array.from({ length: 4 }, (_, i) => ({ id: `s${i}`, agent: 'upper', task: 't' })) },
      'it has 4 steps (branches and nested steps count); at most 3',
    );
    // A planner that always plans another planning step: the third level may not plan again.
    let level = 0;
    await refused(
      () => ({ steps: [{ id: `p${++level}`, plan: { agent: 'planner', task: 'plan' } }] }),
      'plans nest at most 3 deep',
      'p2',
    );
    await refused('just text', 'output: ');
    // Nothing of a refused plan ran.
    expect(agents[1]!.received).toHaveLength(1);
    await caller.close();
  });
});
