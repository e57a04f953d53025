import { GatewayError } from '@openclaw/sdk';
import { clusterBehindNginx, outcomesOf, RECONNECT, submitStream } from '../helpers/load';
import { waitFor } from '../helpers/wait';

const PRESENCE_TTL_MS = 2000;
/**
 * The documented bound for an SDK agent to be registered again elsewhere (operations.md, "When a
 * replica dies"): its first backoff step plus one second for the handshake and the registration.
 */
const BACK_WITHIN_MS = RECONNECT.initialDelayMs + 1000;

/**
 * kill -9 of a replica under load, with three replicas and a worker behind nginx: the agents it held
 * reconnect through nginx and are callable again; sync calls meanwhile either succeed or fail with a
 * retryable error; no async task is lost.
 */
describe('a replica killed under load, behind nginx', () => {
  const balanced = clusterBehindNginx({
    replicas: 3,
    workers: 1,
    appendOnly: true,
    env: { OPENCLAW_PRESENCE_TTL_MS: String(PRESENCE_TTL_MS) },
  });
  const { clients } = balanced;

  it('brings its agents back elsewhere; sync calls succeed or fail retryable; no async task is lost', async () => {
    // Six instances of one agent, spread by nginx over the three replicas.
    const agents = await clients.steadyAgents(6);
    const victim = balanced.cluster.gateways[0]!;
    const onVictim = agents.filter((c) => c.session?.replica === victim.replicaId);
    expect(onVictim.length).toBeGreaterThan(0);

    const caller = await clients.open();
    const submitter = await clients.open();
    const sync = new Map<string, number>();
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
          // Pacing: back off a little after a failure rather than spin on fast refusals.
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    })();
    const submits = submitStream(submitter, 'crash');
    const { submitted } = submits;

    await waitFor(() => (sync.get('ok') ?? 0) >= 100 && submitted.length >= 20, { what: 'load before the crash' });
    const killedAt = Date.now();
    await victim.kill();
    // Its agents reconnect through nginx to the others and register again.
    await waitFor(
      () => onVictim.every((c) => c.connectionState === 'connected' && c.session?.replica !== victim.replicaId),
      {
        what: 'the agents of the killed replica to reconnect elsewhere',
        // Ten times the bound: the machine is shared; the time taken is printed.
        timeoutMs: 10 * BACK_WITHIN_MS,
      },
    );
    const reconnectedMs = Date.now() - killedAt;
    const okAtKill = sync.get('ok') ?? 0;
    await waitFor(() => (sync.get('ok') ?? 0) >= okAtKill + 100, {
      what: '100 more calls after the crash',
      timeoutMs: 30_000,
    });
    running = false;
    await Promise.all([callLoop, submits.stop()]);

    // Every async task submitted reaches its end, completed.
    const unique = [...new Set(submitted)];
    const statuses = await outcomesOf(submitter, unique);
    console.log(
      `replica kill -9 under load: agents back elsewhere after ${reconnectedMs} ms; sync calls ${JSON.stringify(Object.fromEntries(sync))}; ` +
        `async tasks ${unique.length} (submits sent again ${JSON.stringify(Object.fromEntries(submits.resubmits))}), ` +
        JSON.stringify(Object.fromEntries(statuses)),
    );
    expect([...sync.keys()].filter((k) => k.startsWith('FINAL'))).toEqual([]);
    expect(statuses).toEqual(new Map([['completed', unique.length]]));
  });
});
