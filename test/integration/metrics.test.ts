import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { applyPolicy } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { submitAsync, taskEnd } from '../helpers/tasks';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const run = promisify(execFile);
const ADMIN = 'admin-key-for-metrics-tests-00001';
const METRICS_TOKEN = 'metrics-token-for-tests-0001';

/** One sample of a metric: its labels as given, its value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (enough of it for the assertions; promtool checks the rest). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]!] = pair[2]!;
    }
    out.push({ name: match[1]!, labels, value: Number(match[4]) });
  }
  return out;
}

/** The value of the sample with this name whose labels include `labels`; 0 when there is none. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found.reduce((sum, s) => sum + s.value, 0);
}

async function scrape(
  url: string,
  token: string | undefined = METRICS_TOKEN,
): Promise<{ status: number; text: string }> {
  const response = await fetch(`${url}/metrics`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: response.status, text: await response.text() };
}

/** Runs `promtool check metrics` on a scrape; resolves with its complaints (empty when clean). */
async function promtool(text: string): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'openclaw-metrics-'));
  const file = path.join(dir, 'metrics.txt');
  writeFileSync(file, text);
  try {
    const { stdout, stderr } = await run('sh', ['-c', `promtool check metrics < "${file}"`]);
    return `${stdout}${stderr}`.trim();
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 127 || e.code === 'ENOENT') {
      throw new Error('promtool is not installed (Debian package "prometheus"; .ci/run installs it)');
    }
    return `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || 'promtool failed';
  }
}

/** `/metrics` on real replicas and a worker: the format Prometheus takes, and counters that follow the traffic. */
describe('prometheus metrics', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      workers: 1,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_METRICS_TOKEN: METRICS_TOKEN },
      workerEnv: { OPENCLAW_METRICS_TOKEN: METRICS_TOKEN },
    });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('serves /metrics on every gateway and worker, behind the metrics token, passing promtool', async () => {
    const worker = cluster.workers[0]!;
    for (const url of [cluster.gateways[0]!.httpUrl, cluster.gateways[1]!.httpUrl, worker.httpUrl]) {
      expect((await scrape(url, null)).status).toBe(401);
      expect((await scrape(url, 'wrong-token-of-the-same-size!')).status).toBe(401);
      const { status, text } = await scrape(url);
      expect(status).toBe(200);
      expect(await promtool(text)).toBe('');
      const samples = parse(text);
      expect(value(samples, 'openclaw_redis_connection_up', { connection: 'command' })).toBe(1);
      expect(value(samples, 'openclaw_redis_connection_up', { connection: 'subscriber' })).toBe(1);
      expect(value(samples, 'openclaw_bus_delivery_healthy')).toBe(1);
      expect(samples.some((s) => s.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
      expect(samples.some((s) => s.name === 'openclaw_queue_jobs' && s.labels.state === 'delayed')).toBe(true);
    }
    const ready = await fetch(`${worker.httpUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, redis: true, bus: true, draining: false });
  });

  it('moves the counters as known traffic goes through', async () => {
    await applyPolicy(
      cluster,
      ADMIN,
      'governance:\n  rules:\n    - name: no-deletes\n      when: { task: delete }\n      verdict: deny\n',
    );
    const [a, b] = cluster.gateways;
    const headers = { 'x-api-key': ADMIN };
    const before = parse((await scrape(a!.httpUrl)).text);
    const workerBefore = parse((await scrape(cluster.workers[0]!.httpUrl)).text);

    const local = await startAgent(a!.url, { name: 'near', headers });
    const remote = await startAgent(b!.url, { name: 'far', headers });
    const caller = await TestSocket.open(a!.url, { headers });
    for (let i = 0; i < 5; i++) {
      expect((await caller.request({ action: 'coordinator', id: `f${i}`, agent: 'far', task: 't' })).ok).toBe(true);
    }
    for (let i = 0; i < 3; i++) {
      expect((await caller.request({ action: 'coordinator', id: `n${i}`, agent: 'near', task: 't' })).ok).toBe(true);
    }
    const missing = await caller.request({ action: 'coordinator', id: 'x', agent: 'nobody', task: 't' });
    expect(missing).toMatchObject({ ok: false, error: { code: 'AGENT_NOT_FOUND' } });
    const denied = await caller.request({ action: 'coordinator', id: 'd', agent: 'far', task: 'delete' });
    expect(denied).toMatchObject({ ok: false, error: { code: 'POLICY_DENIED' } });
    const taskId = await submitAsync(caller, { agent: 'far', task: 'background' });
    expect(await taskEnd(caller, taskId)).toMatchObject({ status: 'completed' });

    const after = parse((await scrape(a!.httpUrl)).text);
    const delta = (name: string, labels: Record<string, string> = {}) =>
      value(after, name, labels) - value(before, name, labels);
    expect(delta('openclaw_requests_total', { action: 'coordinator', outcome: 'ok' })).toBe(9); // 8 sync, 1 async submit
    expect(delta('openclaw_requests_total', { action: 'coordinator', outcome: 'AGENT_NOT_FOUND' })).toBe(1);
    expect(delta('openclaw_requests_total', { action: 'coordinator', outcome: 'POLICY_DENIED' })).toBe(1);
    expect(delta('openclaw_routing_duration_seconds_count', { route: 'remote' })).toBe(5);
    expect(delta('openclaw_routing_duration_seconds_count', { route: 'local' })).toBe(3);
    expect(delta('openclaw_coordinator_duration_seconds_count')).toBe(10);
    expect(delta('openclaw_bus_messages_sent_total', { type: 'task.dispatch' })).toBe(5);
    expect(delta('openclaw_bus_messages_received_total', { type: 'task.reply' })).toBe(5);
    expect(
      delta('openclaw_governance_verdicts_total', { validator: 'rule:no-deletes', tier: '1', verdict: 'deny' }),
    ).toBe(1);
    expect(delta('openclaw_governance_validator_duration_seconds_count', { tier: '1' })).toBeGreaterThanOrEqual(1);
    expect(value(after, 'openclaw_connections', { role: 'agent' })).toBe(1);
    expect(value(after, 'openclaw_connections', { role: 'client' })).toBe(1);

    const workerAfter = parse((await scrape(cluster.workers[0]!.httpUrl)).text);
    const workerDelta = (name: string, labels: Record<string, string>) =>
      value(workerAfter, name, labels) - value(workerBefore, name, labels);
    expect(workerDelta('openclaw_jobs_total', { kind: 'task', outcome: 'completed' })).toBe(1);
    expect(workerDelta('openclaw_job_duration_seconds_count', { kind: 'task' })).toBe(1);
    expect(workerDelta('openclaw_bus_messages_received_total', { type: 'task.reply' })).toBe(1);
    await Promise.all([caller.close(), local.close(), remote.close()]);
  });

  it('fails /readyz while a replica cannot hear the bus, and recovers by itself when it can again', async () => {
    const victim = cluster.gateways[1]!;
    const admin = new Redis(cluster.redis.url);
    try {
      // Its subscriber is killed and cannot come back: Redis takes no new connection.
      const clients = await admin.client('LIST');
      const line = String(clients)
        .split('\n')
        .find((l) => l.includes(`name=${victim.replicaId}:sub `));
      expect(line).toBeDefined();
      const id = /\bid=(\d+)/.exec(line!)![1]!;
      const connected = Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))![1]);
      await admin.config('SET', 'maxclients', String(connected - 1));
      await admin.client('KILL', 'ID', id);
      await waitFor(async () => (await fetch(`${victim.httpUrl}/readyz`)).status === 503, {
        what: '/readyz to fail while the subscriber is gone',
        timeoutMs: 10_000,
      });
      const deaf = parse((await scrape(victim.httpUrl)).text);
      expect(value(deaf, 'openclaw_bus_delivery_healthy')).toBe(0);
      expect(value(deaf, 'openclaw_redis_connection_up', { connection: 'subscriber' })).toBe(0);

      await admin.config('SET', 'maxclients', '10000');
      await waitFor(async () => (await fetch(`${victim.httpUrl}/readyz`)).status === 200, {
        what: '/readyz to recover once the subscriber is back',
        timeoutMs: 15_000,
      });
      // Green again means it hears again: a call routed to an agent on it is answered.
      const headers = { 'x-api-key': ADMIN };
      const agent = await startAgent(victim.url, { name: 'after-outage', headers });
      const caller = await TestSocket.open(cluster.gateways[0]!.url, { headers });
      const reply = await caller.request({ action: 'coordinator', id: 1, agent: 'after-outage', task: 't' });
      expect(reply.ok).toBe(true);
      expect(value(parse((await scrape(victim.httpUrl)).text), 'openclaw_bus_delivery_healthy')).toBe(1);
      await Promise.all([caller.close(), agent.close()]);
    } finally {
      await admin.config('SET', 'maxclients', '10000').catch(() => undefined);
      admin.disconnect();
    }
  });

  it('notices a subscriber that is connected but deaf, and subscribes again by itself', async () => {
    const [a, b] = cluster.gateways;
    const admin = new Redis(cluster.redis.url);
    const ready = async (url: string) => (await fetch(`${url}/readyz`)).status === 200;
    try {
      // Channel rights taken away: Redis drops every subscriber, ioredis reconnects, and its
      // re-subscribe is refused. The connections are up; nothing arrives.
      await admin.call('ACL', 'SETUSER', 'default', 'resetchannels');
      // Connected again, yet deaf: the canary's silence is what fails it.
      await waitFor(
        async () => {
          const now = parse((await scrape(b!.httpUrl)).text);
          return (
            value(now, 'openclaw_redis_connection_up', { connection: 'subscriber' }) === 1 &&
            value(now, 'openclaw_bus_delivery_healthy') === 0 &&
            !(await ready(b!.httpUrl))
          );
        },
        { what: 'a connected but deaf replica to be unready', timeoutMs: 15_000 },
      );
      // Rights back: ioredis does not subscribe again by itself; the replicas must.
      await admin.call('ACL', 'SETUSER', 'default', 'allchannels');
      await waitFor(async () => (await ready(a!.httpUrl)) && (await ready(b!.httpUrl)), {
        what: 'both replicas to hear their inboxes again',
        timeoutMs: 20_000,
      });
      const headers = { 'x-api-key': ADMIN };
      const agent = await startAgent(b!.url, { name: 'after-deafness', headers });
      const caller = await TestSocket.open(a!.url, { headers });
      const reply = await caller.request({ action: 'coordinator', id: 1, agent: 'after-deafness', task: 't' });
      expect(reply.ok).toBe(true);
      expect(b!.logs()).toContain('subscribed again');
      await Promise.all([caller.close(), agent.close()]);
    } finally {
      await admin.call('ACL', 'SETUSER', 'default', 'allchannels').catch(() => undefined);
      admin.disconnect();
    }
  });
});
