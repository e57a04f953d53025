import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { type Cluster, startCluster } from '../helpers/cluster';
import { waitFor, withTimeout } from '../helpers/wait';

const REPO = path.resolve(__dirname, '..', '..');

function run(
  script: string,
  url: string,
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let output = '';
  const child = spawn(process.execPath, [path.join(REPO, 'examples', script)], {
    cwd: REPO,
    env: { ...process.env, OPENCLAW_URL: url },
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
    cluster = await startCluster({ replicas: 2 });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('runs the agent on one replica and the caller on another', async () => {
    const agent = run('agent.mjs', cluster.gateways[1]!.url);
    try {
      await waitFor(() => agent.output().includes('my-agent is ready'), {
        what: 'the example agent to register',
        timeoutMs: 15_000,
      });
      const caller = run('caller.mjs', cluster.gateways[0]!.url);
      expect(await withTimeout(caller.exited, 15_000, 'the example caller to finish')).toBe(0);
      expect(caller.output()).toBe("progress { stage: 'counting' }\noutput { words: 4 }\n");
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });
});
