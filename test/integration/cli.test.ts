import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { waitFor, withTimeout } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const REPO = path.resolve(__dirname, '..', '..');

describe('openclaw gateway status and metrics', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, workers: 1 });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('shows the whole cluster from any one replica, as a table and as JSON', async () => {
    const [a, b] = cluster.gateways;
    const agent = await startAgent(b!.url, { name: 'shown' });
    // Replicas report every 2 s: wait for B's report to count its agent.
    const status = await waitFor(
      async () => {
        const json = await runCli(['gateway', 'status', '--url', a!.httpUrl, '--json']);
        expect(json.code).toBe(0);
        const parsed = JSON.parse(json.stdout) as { replicas: { replicaId: string; connections: { agent: number } }[] };
        return parsed.replicas.find((r) => r.replicaId === 'B')?.connections.agent === 1 ? parsed : undefined;
      },
      { what: "replica B's report with its agent", timeoutMs: 10_000 },
    );
    expect(status).toMatchObject({
      replicas: [
        { replicaId: 'A', version: '0.1.0', ready: true, draining: false, connections: { agent: 0 } },
        { replicaId: 'B', version: '0.1.0', ready: true, connections: { agent: 1, client: 0 } },
      ],
      workers: [{ workerId: cluster.workers[0]!.replicaId }],
      agents: [{ name: 'shown', kind: 'ws', instances: 1 }],
      queue: { waiting: 0, failed: 0 },
      redis: { reachable: true, version: expect.stringMatching(/^\d+\./), aofEnabled: false },
    });
    const table = await runCli(['gateway', 'status', '--url', a!.httpUrl]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^cluster: 2 replica\(s\), 2 ready; 1 worker\(s\); redis \d+\.\d+/);
    expect(table.stdout).toMatch(
      /replica\s+version\s+ready\s+age\s+agents\s+clients\s+in flight\s+host\nA\s+0\.1\.0\s+yes\s+/,
    );
    expect(table.stdout).toMatch(/\nB\s+0\.1\.0\s+yes\s+\S+\s+1\s+0\s+0\s+/);
    expect(table.stdout).toMatch(/agent\s+kind\s+instances\s+tasks\nshown\s+ws\s+1\s+\*/);
    expect(table.stdout).toMatch(/queue: waiting 0, active 0, delayed 0, failed 0/);
    await agent.close();
  });

  it('streams cluster snapshots to a connection that watches: an agent appears, then vanishes', async () => {
    const [a, b] = cluster.gateways;
    const watcher = await TestSocket.open(a!.url);
    const bad = await watcher.request({ action: 'cluster.watch', id: 0, intervalMs: 10 });
    expect(bad).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', details: [expect.objectContaining({ field: 'intervalMs' })] },
    });
    const watching = await watcher.request({ action: 'cluster.watch', id: 1, intervalMs: 1000 });
    expect(watching).toMatchObject({ ok: true, result: { watching: true, intervalMs: 1000 } });
    const first = await watcher.nextEvent('cluster.snapshot', 5000);
    expect(first).toMatchObject({
      replicas: expect.arrayContaining([
        expect.objectContaining({ replicaId: 'A' }),
        expect.objectContaining({ replicaId: 'B' }),
      ]),
      queue: expect.objectContaining({ waiting: 0 }),
      approvalsPending: 0,
      redis: { reachable: true },
    });
    const agentNames = (f: Record<string, unknown>) => (f.agents as { name: string }[]).map((x) => x.name);
    const agent = await startAgent(b!.url, { name: 'watched' });
    await watcher.nextFrame(
      (f) => f.event === 'cluster.snapshot' && agentNames(f).includes('watched'),
      10_000,
      'a snapshot with the agent',
    );
    await agent.close();
    await watcher.nextFrame(
      (f) => f.event === 'cluster.snapshot' && !agentNames(f).includes('watched'),
      10_000,
      'a snapshot without it',
    );
    expect(await watcher.request({ action: 'cluster.unwatch', id: 2 })).toMatchObject({
      ok: true,
      result: { watching: false },
    });
    await watcher.close();
  });

  it('refuses to start a worker on a port another worker holds, naming the setting', async () => {
    const taken = new URL(cluster.workers[0]!.httpUrl).port;
    const second = await runCli(['worker', 'start', '--redis', cluster.redis.url, '--port', taken], {}, 30_000);
    expect(second.code).toBe(1);
    expect(second.stdout).toMatch(/worker failed to start/);
    expect(second.stdout).toMatch(/is in use: give each worker on this host its own OPENCLAW_WORKER_PORT/);
  });

  it('summarises rates, latency and errors across replicas', async () => {
    const [a, b] = cluster.gateways;
    const agent = await startAgent(b!.url, { name: 'counted' });
    const callers = [await TestSocket.open(a!.url), await TestSocket.open(b!.url)];
    for (const caller of callers) {
      for (let i = 0; i < 5; i++) await caller.request({ action: 'coordinator', id: i, agent: 'counted', task: 't' });
    }
    await callers[0]!.request({ action: 'coordinator', id: 'x', agent: 'missing', task: 't' });
    // Once both reports include every call (A's report may predate its last one), the cumulative
    // counts add up across replicas.
    const summary = await waitFor(
      async () => {
        const json = await runCli(['gateway', 'metrics', '--url', a!.httpUrl, '--json', '--interval', '0.5']);
        expect(json.code).toBe(0);
        const parsed = JSON.parse(json.stdout);
        const counts = parsed.total.requests.coordinator;
        return counts?.ok === 10 && counts?.AGENT_NOT_FOUND === 1 ? parsed : undefined;
      },
      { what: 'both replicas to report the calls', timeoutMs: 15_000 },
    );
    expect(summary.total.requests.coordinator).toEqual({ ok: 10, AGENT_NOT_FOUND: 1 });
    expect(summary.replicas.map((r: { replicaId: string }) => r.replicaId)).toEqual(['A', 'B']);
    expect(summary.replicas[0].coordinatorLatencyMs).toMatchObject({
      count: 6,
      p50: expect.any(Number),
      p99: expect.any(Number),
    });
    expect(summary.total).toMatchObject({
      coordinatorCalls: 11,
      connections: 3,
      requestsPerSecond: expect.any(Number),
    });
    expect(summary.queue).toMatchObject({ waiting: 0 });
    const text = await runCli(['gateway', 'metrics', '--url', b!.httpUrl, '--interval', '0.5']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^cluster over [\d.]+ s: [\d.]+ req\/s, [\d.]+ errors\/s; queue: waiting 0/);
    expect(text.stdout).toMatch(/replica\s+req\/s\s+errors\/s\s+p50 ms\s+p99 ms\s+calls\s+in flight\s+connections/);
    expect(text.stdout).toMatch(/\ntotal\s+/);
    expect(text.stdout).toMatch(/coordinator\s+AGENT_NOT_FOUND\s+1/);
    const bad = await runCli(['gateway', 'metrics', '--url', b!.httpUrl, '--interval', 'soon']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--interval: expected a number of seconds/);
    await Promise.all([...callers.map((c) => c.close()), agent.close()]);
  });

  it('says clearly when no gateway is there', async () => {
    const r = await runCli(['gateway', 'status', '--url', 'http://127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach the gateway at http:\/\/127\.0\.0\.1:1/);
  });
});

describe('openclaw worker start', () => {
  it('exits 2 naming a bad setting, and 1 when Redis cannot be reached', async () => {
    const bad = await runCli(['worker', 'start', '--concurrency', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /openclaw worker: invalid configuration:\n {2}--concurrency: expected an integer from 1 to 10000 \(got "0"\)/,
    );
    const lock = await runCli(['worker', 'start'], {
      OPENCLAW_WORKER_LOCK_MS: '10',
      OPENCLAW_REDIS_STARTUP_TIMEOUT_MS: '5',
    });
    expect(lock.stderr).toMatch(/OPENCLAW_WORKER_LOCK_MS: expected an integer from 1000 to 600000/);
    expect(lock.stderr).toMatch(/OPENCLAW_REDIS_STARTUP_TIMEOUT_MS: expected an integer from 1000 to 3600000/);
    // It keeps trying for OPENCLAW_REDIS_STARTUP_TIMEOUT_MS (10 s by default), then gives up.
    const startedAt = Date.now();
    const unreachable = await runCli(
      ['worker', 'start', '--redis', 'redis://127.0.0.1:1'],
      { OPENCLAW_REDIS_STARTUP_TIMEOUT_MS: '2000' },
      30_000,
    );
    expect(unreachable.code).toBe(1);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(2000);
    expect(unreachable.stdout).toMatch(/worker failed to start/);
    expect(unreachable.stdout).toMatch(
      /cannot reach Redis at redis:\/\/127\.0\.0\.1:1 within 2 s \(last error: connect ECONNREFUSED 127\.0\.0\.1:1\)/,
    );
  });
});

describe('openclaw gateway start', () => {
  it('exits 2 naming a bad setting', async () => {
    const badPort = await runCli(['gateway', 'start', '--port', 'eighty']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/--port: expected an integer from 0 to 65535 \(got "eighty"\)/);
    const open = await runCli(['gateway', 'start', '--auth', 'none', '--host', '0.0.0.0', '--port', '0']);
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/auth "none" only listens on loopback/);
    const env = await runCli(['gateway', 'start'], { OPENCLAW_HEARTBEAT_MS: 'soon' });
    expect(env.stderr).toMatch(/OPENCLAW_HEARTBEAT_MS: expected an integer/);
    // Authentication is on by default: with no key configured, the gateway does not start.
    const bare = await runCli(['gateway', 'start', '--port', '0']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/OPENCLAW_AUTH=apikey needs OPENCLAW_API_KEY_SECRET/);
    // It names every way out.
    for (const way of ['`openclaw up`', '`--auth none`', '--api-keys', '`openclaw apikey create`']) {
      expect(bare.stderr).toContain(way);
    }
    const help = await runCli(['gateway', 'start', '--help']);
    expect(help.stdout).toContain('[OPENCLAW_AUTH, default apikey]');
  });

  it('stops cleanly on SIGTERM, leaving the registry', async () => {
    const cluster = await startCluster({ replicas: 2 });
    const [a, b] = cluster.gateways as [
      NonNullable<(typeof cluster.gateways)[0]>,
      NonNullable<(typeof cluster.gateways)[0]>,
    ];
    const agent = await startAgent(b.url, { name: 'leaving' });
    expect(await b.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect((await agent.socket.closed).code).toBe(1001);
    // A graceful stop removes its agents at once, without waiting for the presence TTL.
    const caller = await TestSocket.open(a.url);
    expect(await caller.request({ action: 'agents.list', id: 1 })).toMatchObject({ result: [] });
    await caller.close();
    await cluster.stop();
  });

  it('is runnable as `npx openclaw` from the repository root', async () => {
    const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('npx', ['--no-install', 'openclaw', '--help'], {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.once('close', (code) => resolve({ code, out }));
    });
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/Usage: openclaw/);
  });
});

describe('openclaw up', () => {
  it('starts Redis, a gateway and a worker with one command and stops them on Ctrl-C', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'openclaw-up-'));
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('OPENCLAW_') && k !== 'REDIS_URL'),
    );
    const child = spawn(
      process.execPath,
      [path.join(REPO, 'packages/cli/dist/bin.js'), 'up', '--port', '0', '--data-dir', dataDir],
      {
        env: clean,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    const up = new Promise<number>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /stack is up: gateway ws:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', () => reject(new Error(`openclaw up exited early:\n${stderr}`)));
    });
    child.stdout.resume();
    try {
      const port = await withTimeout(up, 20_000, 'the stack to come up');
      expect(stderr).toMatch(/started redis-server on 127\.0\.0\.1:\d+, data in /);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(200);
      // Mission Control is served, and, authentication being off on this local stack, lets the page in.
      expect(stderr).toContain(`Mission Control http://127.0.0.1:${port}/dashboard/`);
      expect((await fetch(`http://127.0.0.1:${port}/dashboard/`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/v1/cluster`)).status).toBe(200);
      const agent = await startAgent(`ws://127.0.0.1:${port}`, { name: 'local' });
      const caller = await TestSocket.open(`ws://127.0.0.1:${port}`);
      expect(await caller.request({ action: 'coordinator', id: 1, agent: 'local', task: 't' })).toMatchObject({
        ok: true,
      });
      // Its worker runs async tasks.
      const submitted = await caller.request({
        action: 'coordinator',
        id: 2,
        agent: 'local',
        task: 't',
        mode: 'async',
      });
      const taskId = (submitted.result as { taskId: string }).taskId;
      await caller.nextFrame(
        (f) => f.event === 'task.status' && f.taskId === taskId && f.status === 'completed',
        20_000,
        'the async task to complete',
      );
      expect(stderr).toMatch(/worker worker-[0-9a-f]{8}/);
      await Promise.all([caller.close(), agent.close()]);
      expect(existsSync(path.join(dataDir, 'redis'))).toBe(true);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGINT');
      expect(await withTimeout(exited, 20_000, 'openclaw up to stop')).toBe(0);
      expect(stderr).toMatch(/stopped\n$/);
      const redisPort = Number(/started redis-server on 127\.0\.0\.1:(\d+)/.exec(stderr)![1]);
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
      // The redis-server it started is gone too.
      const net = await import('node:net');
      const refused = await new Promise<boolean>((resolve) => {
        const s = net.connect(redisPort, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(false);
        });
        s.once('error', () => resolve(true));
      });
      expect(refused).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
