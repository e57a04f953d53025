import { connect, type GatewayClient, GatewayError } from '@openclaw/sdk';
import { type Cluster, startCluster } from '../helpers/cluster';
import { NginxProcess } from '../helpers/nginx';
import { waitFor } from '../helpers/wait';

const PRESENCE_TTL_MS = 2000;
const RECONNECT = { initialDelayMs: 200, maxDelayMs: 1000 };

/**
 * kill -9 of a replica under load, with three replicas and a worker behind nginx: the agents it held
 * reconnect through nginx and are callable again; sync calls meanwhile either succeed or fail with a
 * retryable error; no async task is lost.
 */
describe('a replica killed under load, behind nginx', () => {
  let cluster: Cluster;
  let nginx: NginxProcess;
  const clients: GatewayClient[] = [];

  const open = async () => {
    const client = await connect({ url: nginx.url, reconnect: RECONNECT, requestTimeoutMs: 15_000 });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 3,
      workers: 1,
      appendOnly: true,
      env: { OPENCLAW_PRESENCE_TTL_MS: String(PRESENCE_TTL_MS) },
    });
    nginx = await NginxProcess.start(cluster.gateways.map((g) => g.port));
  });
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await nginx?.stop();
    await cluster?.stop();
  });

  it('brings its agents back elsewhere; sync calls succeed or fail retryable; no async task is lost', async () => {
    // Six instances of one agent, spread by nginx over the three replicas.
    const agents: GatewayClient[] = [];
    for (let i = 0; i < 6; i++) {
      const client = await open();
      const agent = client.agent('steady', { concurrency: 8 });
      agent.handle('work', async (data) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return { done: data };
      });
      await agent.register();
      agents.push(client);
    }
    const victim = cluster.gateways[0]!;
    const onVictim = agents.filter((c) => c.session?.replica === victim.replicaId);
    expect(onVictim.length).toBeGreaterThan(0);

    const caller = await open();
    const submitter = await open();
    const sync = new Map<string, number>();
    const submitted: string[] = [];
    let refusedSubmits = 0;
    let running = true;
    let n = 0;
    const count = (key: string) => sync.set(key, (sync.get(key) ?? 0) + 1);
    const callLoop = (async () => {
      while (running) {
        try {
          await caller.call('steady', 'work', ++n, { timeoutMs: 10_000 });
          count('ok');
        } catch (error) {
          const e = error as GatewayError;
          count(e instanceof GatewayError && e.retryable ? `retryable ${e.code}` : `FINAL ${e.code ?? e}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    })();
    const submitLoop = (async () => {
      let k = 0;
      while (running) {
        // One key per task: a submit whose answer was lost is sent again, and is the same task.
        const key = `crash-${++k}`;
        for (;;) {
          try {
            submitted.push((await submitter.submit('steady', 'work', { k }, { idempotencyKey: key })).taskId);
            break;
          } catch {
            refusedSubmits += 1;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();

    await waitFor(() => (sync.get('ok') ?? 0) >= 100 && submitted.length >= 20, { what: 'load before the crash' });
    const killedAt = Date.now();
    await victim.kill();
    // Its agents reconnect through nginx to the others and register again.
    await waitFor(() => onVictim.every((c) => c.state === 'connected' && c.session?.replica !== victim.replicaId), {
      what: 'the agents of the killed replica to reconnect elsewhere',
      timeoutMs: 15_000,
    });
    const reconnectedMs = Date.now() - killedAt;
    const okAtKill = sync.get('ok') ?? 0;
    await waitFor(() => (sync.get('ok') ?? 0) >= okAtKill + 100, {
      what: '100 more calls after the crash',
      timeoutMs: 30_000,
    });
    running = false;
    await Promise.all([callLoop, submitLoop]);

    // Every async task submitted reaches its end, completed.
    const unique = [...new Set(submitted)];
    const outcomes = await Promise.all(unique.map((taskId) => submitter.waitForTask(taskId)));
    const statuses = new Map<string, number>();
    for (const o of outcomes) statuses.set(o.status, (statuses.get(o.status) ?? 0) + 1);
    console.log(
      `replica kill -9 under load: agents back elsewhere after ${reconnectedMs} ms; sync calls ${JSON.stringify(Object.fromEntries(sync))}; ` +
        `async tasks ${unique.length} (${refusedSubmits} submits sent again), ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    expect([...sync.keys()].filter((k) => k.startsWith('FINAL'))).toEqual([]);
    expect(statuses).toEqual(new Map([['completed', unique.length]]));
  });
});
