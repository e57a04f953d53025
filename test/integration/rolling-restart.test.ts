import { GatewayError } from '@openclaw/sdk';
import type { ExitStatus } from '../helpers/gateway-process';
import { clusterBehindNginx, outcomesOf, submitStream } from '../helpers/load';
import { waitFor } from '../helpers/wait';

/** Short enough for the test, long enough for every call in flight (a few ms each) to finish. */
const DRAIN_MS = 4000;

/**
 * A rolling update: the three replicas behind nginx are restarted one after another (SIGTERM, drain,
 * a new process on the same port) while SDK callers make sync calls and submit async tasks without
 * pause. Every sync call succeeds (the SDK sends again, by itself, the calls the gateway says no agent
 * received), none runs twice, and every async task completes.
 */
describe('a rolling restart of every replica under load, behind nginx', () => {
  const balanced = clusterBehindNginx({
    replicas: 3,
    workers: 2,
    appendOnly: true,
    env: { OPENCLAW_PRESENCE_TTL_MS: '2000', OPENCLAW_DRAIN_MS: String(DRAIN_MS) },
  });
  const { clients } = balanced;

  it('loses no sync call (retried transparently, run at most once) and no async task', async () => {
    // How many times the agents ran each sync call (by its number), across all instances.
    const runs = new Map<number, number>();
    const agents = await clients.steadyAgents(6, (data) => {
      const n = (data as { call?: number }).call;
      if (n !== undefined) runs.set(n, (runs.get(n) ?? 0) + 1);
    });
    expect(new Set(agents.map((c) => c.session?.replica)).size).toBe(3);

    const callers = await Promise.all([clients.open(), clients.open(), clients.open()]);
    const submitter = await clients.open();
    const retries = new Map<string, number>();
    // What the callers went through, printed if a call fails.
    const t0 = Date.now();
    const timeline: string[] = [];
    const note = (line: string) => timeline.push(`${Date.now() - t0} ms ${line}`);
    callers.forEach((caller, i) => {
      caller.on('disconnected', (e) => note(`caller ${i} disconnected (${e.code})`));
      caller.on('reconnecting', (e) =>
        note(`caller ${i} reconnecting: ${(e.lastError as Error | undefined)?.message}`),
      );
      caller.on('connected', () => note(`caller ${i} connected to ${caller.session?.replica}`));
      caller.on('call.retry', (e) => note(`caller ${i} sends a call again: ${e.error.code} ${e.error.message}`));
    });
    for (const caller of callers) {
      caller.on('call.retry', ({ error }) => retries.set(error.code, (retries.get(error.code) ?? 0) + 1));
    }
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    let n = 0;
    const callLoops = callers.map(async (caller) => {
      while (running) {
        const call = ++n;
        try {
          const output = await caller.call('steady', 'work', { call }, { timeoutMs: 15_000 });
          expect(output).toEqual({ done: { call } });
          ok += 1;
        } catch (error) {
          const e = error as GatewayError;
          failures.push(e instanceof GatewayError ? `${e.code}: ${e.message}` : String(error));
          note(`a call failed: ${e.message}`);
          // Pacing: back off a little after a failure rather than spin on fast refusals.
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    });
    const submits = submitStream(submitter, 'rolling');
    const { submitted } = submits;

    await waitFor(() => ok >= 100 && submitted.length >= 20, { what: 'load before the restarts' });
    const restarts: { replica: string; exit: ExitStatus; okDuring: number }[] = [];
    for (const old of [...balanced.cluster.gateways]) {
      const before = ok;
      note(`restarting ${old.replicaId}`);
      const { replica, exit } = await balanced.cluster.replaceReplica(old, `${old.replicaId}2`);
      note(`${replica.replicaId} started`);
      restarts.push({ replica: old.replicaId, exit, okDuring: ok - before });
      // Traffic goes on through the others, then the new replica takes its share of it again.
      const okAtStart = ok;
      await waitFor(() => ok >= okAtStart + 100, { what: `100 calls after ${replica.replicaId} started` });
    }
    running = false;
    await Promise.all([...callLoops, submits.stop()]);

    // Every agent instance is back, on the new replicas.
    const newIds = new Set(balanced.cluster.gateways.map((g) => g.replicaId));
    await waitFor(
      () => agents.every((c) => c.connectionState === 'connected' && newIds.has(c.session?.replica ?? '')),
      {
        what: 'every agent on a new replica',
      },
    );
    // Every async task submitted reaches its end, completed.
    const unique = [...new Set(submitted)];
    const statuses = await outcomesOf(submitter, unique);
    const twice = [...runs].filter(([, count]) => count > 1);

    console.log(
      `rolling restart of 3 replicas under load: sync calls ${ok + failures.length} ` +
        `(${ok} ok, ${failures.length} failed), sent again by the SDK ${JSON.stringify(Object.fromEntries(retries))}, ` +
        `run twice ${twice.length}; async tasks ${unique.length} ` +
        `(submits sent again ${JSON.stringify(Object.fromEntries(submits.resubmits))}) ` +
        `${JSON.stringify(Object.fromEntries(statuses))}; ` +
        `replicas ${restarts.map((r) => `${r.replica} exit ${r.exit.code ?? r.exit.signal}, ${r.okDuring} calls meanwhile`).join('; ')}`,
    );
    if (failures.length > 0) console.log(`${timeline.join('\n')}\n\nnginx:\n${balanced.nginx.logs().slice(-20_000)}`);
    expect(failures).toEqual([]);
    expect(twice).toEqual([]);
    expect(restarts.map((r) => r.exit)).toEqual(restarts.map(() => ({ code: 0, signal: null })));
    expect(statuses).toEqual(new Map([['completed', unique.length]]));
  });
});
