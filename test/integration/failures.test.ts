import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

/** The documented bound for a dead replica's agents to leave agents.list: the presence TTL. */
const PRESENCE_TTL_MS = 2000;

async function readyz(httpUrl: string): Promise<number> {
  return (await fetch(`${httpUrl}/readyz`)).status;
}

describe('a replica killed with SIGKILL', () => {
  let cluster: Cluster;
  afterAll(async () => {
    await cluster.stop();
  });

  it('fails in-flight calls fast, and its agents leave agents.list within the presence TTL', async () => {
    cluster = await startCluster({ replicas: 2, env: { OPENCLAW_PRESENCE_TTL_MS: String(PRESENCE_TTL_MS) } });
    const [a, b] = cluster.gateways as [(typeof cluster.gateways)[0], (typeof cluster.gateways)[0]];
    const agent = await startAgent(b.url, { name: 'doomed', answer: 'manual' });
    const caller = await TestSocket.open(a.url);
    expect(await caller.request({ action: 'agents.list', id: 'before' })).toMatchObject({
      result: [{ name: 'doomed', instances: 1 }],
    });
    caller.send({ action: 'coordinator', id: 'inflight', agent: 'doomed', task: 't', timeoutMs: 30_000 });
    await agent.socket.nextEvent('task');

    await b.kill();

    // The 30 s deadline is far away: only noticing the dead holder explains AGENT_UNAVAILABLE.
    const inflight = await caller.nextResponse((r) => r.id === 'inflight', 15_000);
    expect(inflight).toMatchObject({ ok: false, error: { code: 'AGENT_UNAVAILABLE', retryable: true } });
    // The agent had the task when its replica died: not marked as safe to send again.
    expect(inflight.error).not.toHaveProperty('dispatched');
    let n = 0;
    await waitFor(
      async () => {
        const list = await caller.request({ action: 'agents.list', id: `poll-${n++}` });
        return (list.result as unknown[]).length === 0;
      },
      { what: 'the dead replica’s agent to leave agents.list', timeoutMs: PRESENCE_TTL_MS + 1000, intervalMs: 100 },
    );
    // Until a replica sweeps the dead one's instances (one sweep interval later), a call hears that the
    // agent's replica does not report in (retryable); then that the agent is unknown.
    const codes: string[] = [];
    await waitFor(
      async () => {
        const r = await caller.request({ action: 'coordinator', id: `after-${n++}`, agent: 'doomed', task: 't' });
        codes.push((r.error as { code: string }).code);
        return codes.at(-1) === 'AGENT_NOT_FOUND';
      },
      { what: 'AGENT_NOT_FOUND once the dead replica is swept', timeoutMs: PRESENCE_TTL_MS + 1000, intervalMs: 100 },
    );
    expect(new Set(codes.slice(0, -1))).toEqual(new Set(codes.length > 1 ? ['AGENT_UNAVAILABLE'] : []));
    expect(a.isRunning).toBe(true);
    await caller.close();
    await agent.socket.closed;
  });
});

describe('a Redis restart under traffic', () => {
  let cluster: Cluster;
  afterAll(async () => {
    await cluster.stop();
  });

  it('keeps every process up, fails calls fast while Redis is down, and routes again afterwards', async () => {
    cluster = await startCluster({ replicas: 2, env: { OPENCLAW_PRESENCE_TTL_MS: String(PRESENCE_TTL_MS) } });
    const [a, b] = cluster.gateways as [(typeof cluster.gateways)[0], (typeof cluster.gateways)[0]];
    const agent = await startAgent(b.url, { name: 'steady', concurrency: 8 });
    const callers = await Promise.all([1, 2, 3, 4].map(() => TestSocket.open(a.url)));
    const outcomes = new Map<string, number>();
    let running = true;
    let id = 0;
    // Four callers in a loop for the whole test: every call must get an answer (30 s deadline, 35 s wait).
    const traffic = callers.map(async (caller) => {
      while (running) {
        const r = await caller.request(
          { action: 'coordinator', id: ++id, agent: 'steady', task: 't', timeoutMs: 30_000 },
          35_000,
        );
        const code = r.ok ? 'ok' : String((r.error as { code: string }).code);
        outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
        // Pacing: a caller refused at once backs off a little rather than spin on the refusals.
        if (!r.ok) await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
    const okCount = () => outcomes.get('ok') ?? 0;

    await waitFor(() => okCount() >= 50, { what: '50 calls before the outage' });
    await cluster.redis.kill();
    await waitFor(async () => (await readyz(a.httpUrl)) === 503 && (await readyz(b.httpUrl)) === 503, {
      what: 'both replicas to report not ready',
    });
    await waitFor(() => (outcomes.get('UNAVAILABLE') ?? 0) >= 20, {
      what: 'calls to fail with UNAVAILABLE while Redis is down',
    });
    expect(a.isRunning && b.isRunning).toBe(true);

    // Redis comes back empty (no persistence): the replicas register their agents again by themselves.
    await cluster.redis.restart();
    await waitFor(async () => (await readyz(a.httpUrl)) === 200 && (await readyz(b.httpUrl)) === 200, {
      what: 'both replicas to be ready again',
      timeoutMs: 15_000,
    });
    const okAfterRestart = okCount();
    await waitFor(() => okCount() >= okAfterRestart + 50, {
      what: '50 more calls to succeed after the restart',
      timeoutMs: 15_000,
    });
    running = false;
    await Promise.all(traffic);

    expect(a.isRunning && b.isRunning).toBe(true);
    // Only these outcomes: success, or a fast retryable refusal; never a TIMEOUT at the 30 s deadline.
    expect(
      [...outcomes.keys()].filter(
        (code) => !['ok', 'UNAVAILABLE', 'AGENT_UNAVAILABLE', 'AGENT_NOT_FOUND'].includes(code),
      ),
    ).toEqual([]);
    await Promise.all(callers.map((c) => c.close()));
    await agent.close();
  });
});
