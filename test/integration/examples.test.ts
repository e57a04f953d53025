import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { type Cluster, startCluster } from '../helpers/cluster';
import { waitFor, withTimeout } from '../helpers/wait';

const REPO = path.resolve(__dirname, '..', '..');

function run(
  script: string,
  url: string,
  env: Record<string, string> = {},
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let output = '';
  const child = spawn(process.execPath, [path.join(REPO, 'examples', script)], {
    cwd: REPO,
    env: { ...process.env, OPENCLAW_URL: url, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** The README's five-minute example, as shipped in examples/, against a real two-replica cluster. */
describe('examples', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, workers: 1 });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('runs the agent on one replica, and the caller and an A2A client on another', async () => {
    const agent = run('agent.mjs', cluster.gateways[1]!.url);
    try {
      await waitFor(() => agent.output().includes('my-agent is ready'), {
        what: 'the example agent to register',
        timeoutMs: 15_000,
      });
      const caller = run('caller.mjs', cluster.gateways[0]!.url);
      expect(await withTimeout(caller.exited, 15_000, 'the example caller to finish')).toBe(0);
      expect(caller.output()).toBe("progress { stage: 'counting' }\noutput { words: 4 }\n");
      // The same agent, reached by an A2A client through the other replica's A2A endpoint.
      const a2a = run('a2a-client.mjs', cluster.gateways[0]!.url, {
        OPENCLAW_A2A_URL: `${cluster.gateways[0]!.httpUrl}/a2a/my-agent/`,
      });
      expect(await withTimeout(a2a.exited, 15_000, 'the example A2A client to finish')).toBe(0);
      expect(a2a.output()).toBe(
        [
          'task TASK_STATE_COMPLETED { words: 3 }',
          "progress { stage: 'counting' }",
          'artifact { words: 3 }',
          'stream ended TASK_STATE_COMPLETED',
          '',
        ].join('\n'),
      );
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  it('runs the customer-service workflow: answered, resolved by support, escalated by a condition, handed off by default, the conversation in memory', async () => {
    const example = run('customer-service.mjs', cluster.gateways[0]!.url);
    expect(await withTimeout(example.exited, 30_000, 'the customer-service example to finish')).toBe(0);
    expect(example.output()).toBe(
      [
        '"What are your opening hours?": completed, answered by query-agent: We are open 9 to 17.',
        '  steps: query > route=answered > reply',
        '  memory: customer > query-agent',
        '"The app shows error 42": completed, answered by tech-support: Error 42: update the app to 2.1.',
        '  steps: query > route=technical > support > (escalate skipped) > reply',
        '  memory: customer > query-agent > tech-support',
        '"The app crashes at start": completed, answered by a person: Reinstall the app; we will call you.',
        '  steps: query > route=technical > support > escalate > reply',
        '  memory: customer > query-agent > a person',
        '"My bill is wrong": completed, answered by a person: Reinstall the app; we will call you.',
        '  steps: query > route=default > handoff > reply',
        '  memory: customer > query-agent > a person',
        '',
      ].join('\n'),
    );
  });

  it('runs the browser-style sample: a bare WebSocket, onopen, a coordinator frame', async () => {
    const agent = run('agent.mjs', cluster.gateways[1]!.url);
    try {
      await waitFor(() => agent.output().includes('my-agent is ready'), {
        what: 'the example agent to register',
        timeoutMs: 15_000,
      });
      const caller = run('browser-style.mjs', cluster.gateways[0]!.url);
      const code = await withTimeout(caller.exited, 15_000, 'the browser-style caller to finish');
      expect(caller.output()).toBe("progress { stage: 'counting' }\noutput { words: 5 }\n");
      expect(code).toBe(0);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  it('runs the planned pipeline: the planner returns the steps, the workflow runs them', async () => {
    const example = run('planned-pipeline.mjs', cluster.gateways[1]!.url);
    expect(await withTimeout(example.exited, 30_000, 'the planned-pipeline example to finish')).toBe(0);
    expect(example.output()).toBe(
      "planned: fetch, clean, report\ncompleted: { report: '3 regions: north, south, east' }\n",
    );
  });
});

/** The same examples with authentication on: the SDK sends the key as a header, a bare WebSocket in the URL. */
describe('examples with API keys', () => {
  const KEY = 'example-admin-key-0123456789';
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({ replicas: 1, auth: 'apikey', apiKeys: [KEY] });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('runs the agent with OPENCLAW_API_KEY, and the browser-style caller with ?api_key=', async () => {
    const url = cluster.gateways[0]!.url;
    const agent = run('agent.mjs', url, { OPENCLAW_API_KEY: KEY });
    try {
      await waitFor(() => agent.output().includes('my-agent is ready'), {
        what: 'the example agent to register',
        timeoutMs: 15_000,
      });
      const caller = run('browser-style.mjs', url, { OPENCLAW_API_KEY: KEY });
      expect(await withTimeout(caller.exited, 15_000, 'the browser-style caller to finish')).toBe(0);
      expect(caller.output()).toBe("progress { stage: 'counting' }\noutput { words: 5 }\n");
      const refused = run('browser-style.mjs', url, { OPENCLAW_API_KEY: 'not-a-key' });
      expect(await withTimeout(refused.exited, 15_000, 'the refused caller to finish')).toBe(1);
      expect(refused.output()).toContain('could not connect');
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });
});
