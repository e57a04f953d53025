import { AuditLog, RedisKeys, silentLogger } from '@openclaw/core';
import Redis from 'ioredis';
import { runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const ADMIN = 'bootstrap-admin-key-0123456789';

interface Entry {
  id: string;
  type: string;
  outcome: string;
  principal?: string;
  replica?: string;
  details?: Record<string, unknown>;
}

/** The tamper-evident audit trail, written by two replicas into one chain per tenant. */
describe('audit trail', () => {
  let cluster: Cluster;
  let redis: Redis;
  let stream: string;
  const cli = (args: string[]) => runCli([...args, '--url', cluster.gateways[0]!.httpUrl, '--api-key', ADMIN]);
  const tail = async (tenant = 'default'): Promise<Entry[]> =>
    JSON.parse((await cli(['audit', 'tail', '--json', '--limit', '500', '--tenant', tenant])).stdout) as Entry[];
  /** Rewrites the stream with the same ids, through `edit`, as someone with access to Redis could. */
  const rewrite = async (edit: (rows: [string, string[]][]) => [string, string[]][]) => {
    const rows = (await redis.xrange(stream, '-', '+')) as [string, string[]][];
    await redis.del(stream);
    for (const [id, fields] of edit(rows)) await redis.xadd(stream, id, ...fields);
    return rows;
  };

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_API_KEY_SECRET: 'k'.repeat(40), OPENCLAW_AUDIT_SECRET: 'a'.repeat(40) },
    });
    redis = new Redis(cluster.redis.url);
    stream = `${cluster.keyPrefix}:{audit:default}`;
  });
  afterAll(async () => {
    redis.disconnect();
    await cluster.stop();
  });

  it('records connections, calls, denials, registrations, key changes and failed logins, without secrets', async () => {
    const created = await cli(['apikey', 'create', '--name', 'c', '--role', 'caller']);
    const key = created.stdout.trim();
    const agent = await startAgent(cluster.gateways[1]!.url, { name: 'ledger', headers: { 'x-api-key': ADMIN } });
    const caller = await TestSocket.open(cluster.gateways[0]!.url, { headers: { 'x-api-key': key } });
    expect(await caller.request({ action: 'coordinator', id: 1, agent: 'ledger', task: 'post' })).toMatchObject({
      ok: true,
    });
    expect(await caller.request({ action: 'register', id: 2, name: 'ledger' })).toMatchObject({
      error: { code: 'FORBIDDEN' },
    });
    await caller.close();
    await expect(
      TestSocket.open(cluster.gateways[1]!.url, { headers: { 'x-api-key': 'not-a-real-key-0123456789' } }),
    ).rejects.toMatchObject({ status: 401 });
    const id = key.slice(4, 16);
    expect((await cli(['apikey', 'revoke', id])).code).toBe(0);
    await agent.close();

    let entries: Entry[] = [];
    await waitFor(
      async () => {
        entries = await tail();
        return entries.some((e) => e.type === 'connection.closed' && e.principal === `apikey:${id}`);
      },
      { what: 'the audit entries of both replicas' },
    );
    const types = new Set(entries.map((e) => e.type));
    for (const t of [
      'apikey.created',
      'connection.opened',
      'agent.registered',
      'task.routed',
      'authz.denied',
      'apikey.revoked',
      'connection.closed',
    ]) {
      expect(types).toContain(t);
    }
    expect(entries.find((e) => e.type === 'task.routed')).toMatchObject({
      principal: `apikey:${id}`,
      outcome: 'ok',
      details: { agent: 'ledger', task: 'post' },
    });
    expect(entries.find((e) => e.type === 'authz.denied')).toMatchObject({
      principal: `apikey:${id}`,
      outcome: 'FORBIDDEN',
    });
    expect(new Set(entries.map((e) => e.replica))).toEqual(new Set(['A', 'B']));
    const failed = await tail('_unauthenticated');
    expect(failed.at(-1)).toMatchObject({
      type: 'auth.failed',
      outcome: 'UNAUTHENTICATED',
      details: { address: '127.0.0.1', reason: 'the API key is not valid' },
    });
    const everything = JSON.stringify([entries, failed]);
    expect(everything).not.toContain(key);
    expect(everything).not.toContain(ADMIN);
    expect(everything).not.toContain('not-a-real-key');
    // Export by time, as JSON lines.
    const exported = await cli(['audit', 'export', '--since', new Date(Date.now() - 60_000).toISOString()]);
    const lines = exported.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Entry);
    expect(lines.map((l) => l.id)).toEqual(entries.map((e) => e.id));
  });

  it('verifies a clean trail and detects a changed, removed or reordered entry', async () => {
    expect(await cli(['audit', 'verify', '--tenant', 'default'])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^default: ok, (\d+) entries, sequence 1 to \1\n$/),
    });

    const original = await rewrite((rows) =>
      rows.map(([id, f], i) =>
        i === 2 ? [id, f.map((v, j) => (j === 1 ? v.replace('"outcome":"ok"', '"outcome":"FORBIDDEN"') : v))] : [id, f],
      ),
    );
    const changed = await cli(['audit', 'verify', '--tenant', 'default']);
    expect(changed.code).toBe(1);
    expect(changed.stdout).toContain(
      `BROKEN at entry ${original[2]![0]}: its content does not match its hash (changed entry)`,
    );

    await rewrite(() => original.filter((_, i) => i !== 3));
    const removed = await cli(['audit', 'verify', '--tenant', 'default']);
    expect(removed.code).toBe(1);
    expect(removed.stdout).toContain(`BROKEN at entry ${original[4]![0]}: it does not follow the entry before it`);

    await rewrite(() => original.map(([id], i) => [id, original[i === 3 ? 4 : i === 4 ? 3 : i]![1]]));
    const reordered = await cli(['audit', 'verify', '--tenant', 'default']);
    expect(reordered.code).toBe(1);
    expect(reordered.stdout).toContain(`BROKEN at entry ${original[3]![0]}`);

    await rewrite(() => original);
    expect((await cli(['audit', 'verify', '--tenant', 'default'])).code).toBe(0);
  });

  it('writes a compliance report of a span', async () => {
    const since = new Date(Date.now() - 10 * 60_000).toISOString();
    const json = await cli(['audit', 'report', '--since', since, '--format', 'json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as {
      calls: { principal: string; agent: string; calls: number }[];
      denials: unknown[];
      adminChanges: { type: string }[];
      failedAuthentications: { address: string; count: number }[];
    };
    expect(report.calls).toContainEqual(expect.objectContaining({ agent: 'ledger', calls: 1 }));
    expect(report.denials.length).toBeGreaterThanOrEqual(1);
    expect(report.adminChanges.map((c) => c.type)).toEqual(
      expect.arrayContaining(['apikey.created', 'apikey.revoked']),
    );
    expect(report.failedAuthentications).toContainEqual({ address: '127.0.0.1', count: 1 });
    const md = await cli(['audit', 'report', '--since', since]);
    expect(md.stdout).toMatch(/^# Audit report: tenant default\n/);
    expect(md.stdout).toContain('## Who called what');
  });

  it('takes durations, ISO times and epoch ms for a span, reports the last 24 hours by default, and names a bad time', async () => {
    const http = async (path: string) => {
      const response = await fetch(`${cluster.gateways[1]!.httpUrl}${path}`, { headers: { 'x-api-key': ADMIN } });
      return { status: response.status, json: (await response.json()) as Record<string, unknown> };
    };
    interface Report {
      since: string;
      until: string;
      calls: { agent: string; calls: number }[];
    }
    const HOUR = 3_600_000;

    let before = Date.now();
    const lastHour = await cli(['audit', 'report', '--since', '1h', '--format', 'json']);
    let after = Date.now();
    expect(lastHour.code).toBe(0);
    const cliReport = JSON.parse(lastHour.stdout) as Report;
    expect(Date.parse(cliReport.since)).toBeGreaterThanOrEqual(before - HOUR);
    expect(Date.parse(cliReport.since)).toBeLessThanOrEqual(after - HOUR);
    expect(Date.parse(cliReport.until)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(cliReport.until)).toBeLessThanOrEqual(after);
    expect(cliReport.calls).toContainEqual(expect.objectContaining({ agent: 'ledger', calls: 1 }));

    before = Date.now();
    const byDefault = await http('/v1/audit/report');
    after = Date.now();
    expect(byDefault.status).toBe(200);
    const report = byDefault.json as unknown as Report;
    expect(Date.parse(report.until) - Date.parse(report.since)).toBe(24 * HOUR);
    expect(Date.parse(report.until)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(report.until)).toBeLessThanOrEqual(after);
    expect(report.calls).toContainEqual(expect.objectContaining({ agent: 'ledger', calls: 1 }));
    // Without --since the CLI asks for the same default span.
    const cliDefault = JSON.parse((await cli(['audit', 'report', '--format', 'json'])).stdout) as Report;
    expect(Date.parse(cliDefault.until) - Date.parse(cliDefault.since)).toBe(24 * HOUR);
    // `until` alone: the 24 hours before it.
    const until = Date.parse('2026-01-02T00:00:00.000Z');
    expect((await http(`/v1/audit/report?until=${until}`)).json).toMatchObject({
      since: '2026-01-01T00:00:00.000Z',
      until: '2026-01-02T00:00:00.000Z',
    });

    const sinceHour = await http('/v1/audit/report?since=1h&until=2099-01-01T00:00:00Z');
    expect(sinceHour.status).toBe(200);
    expect(sinceHour.json.until).toBe('2099-01-01T00:00:00.000Z');
    expect(sinceHour.json.calls).toContainEqual(expect.objectContaining({ agent: 'ledger', calls: 1 }));
    const exported = await cli(['audit', 'export', '--since', '15m', '--until', '0s']);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toContain('"type":"apikey.created"');

    const accepted = 'expected a duration such as 15m, 1h or 7d, an ISO time, or epoch milliseconds';
    for (const [path, field, value] of [
      ['/v1/audit/report?since=yesterday', 'since', 'yesterday'],
      ['/v1/audit/report?since=1h&until=1%20h', 'until', '1 h'],
      ['/v1/audit?since=1y', 'since', '1y'],
    ] as const) {
      expect([path, await http(path)]).toEqual([
        path,
        {
          status: 400,
          json: {
            error: expect.objectContaining({ code: 'BAD_REQUEST', message: `${field}: ${accepted}; got "${value}"` }),
          },
        },
      ]);
    }
    const bad = await cli(['audit', 'report', '--since', 'yesterday']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toBe(`openclaw: --since: ${accepted}; got "yesterday"\n`);
    const badExport = await cli(['audit', 'export', '--since', '1h', '--until', 'later']);
    expect(badExport.code).toBe(1);
    expect(badExport.stderr).toBe(`openclaw: --until: ${accepted}; got "later"\n`);
  });

  it('trims entries past retention and keeps the rest verifiable', async () => {
    const log = new AuditLog({
      redis,
      keys: new RedisKeys(cluster.keyPrefix),
      replicaId: 'test',
      secret: 'a'.repeat(40),
      logger: silentLogger(),
    });
    for (let i = 0; i < 10; i++) {
      log.record('retention', { type: 'test.event', outcome: 'ok', details: { i } });
      // Each entry in a millisecond of its own, so that a trim by time can fall between any two:
      // the entry is written, and the clock has moved past its stream id's millisecond.
      const written = await waitFor(async () => (await log.read('retention'))[i], { what: `audit entry ${i}` });
      await waitFor(() => Date.now() > Number(written.id.split('-')[0]), {
        what: `the millisecond after audit entry ${i}`,
        intervalMs: 1,
      });
    }
    await log.drain();
    const all = await log.read('retention');
    expect(all).toHaveLength(10);
    expect(await log.trim('retention', Number(all[5]!.id.split('-')[0]))).toBe(5);
    expect(await log.verify('retention')).toEqual({
      tenant: 'retention',
      ok: true,
      entries: 5,
      firstSeq: 6,
      lastSeq: 10,
      keyed: true,
    });
    // Removing the oldest remaining entry is still detected.
    await redis.xdel(`${cluster.keyPrefix}:{audit:retention}`, all[5]!.id);
    expect(await log.verify('retention')).toMatchObject({ ok: false, broken: { id: all[6]!.id } });
  });

  it('records the close code the gateway sent: 1009 for a frame over the limit', async () => {
    const key = (await cli(['apikey', 'create', '--name', 'big', '--role', 'caller'])).stdout.trim();
    const id = key.slice(4, 16);
    const socket = await TestSocket.open(cluster.gateways[1]!.url, { headers: { 'x-api-key': key } });
    socket.send({ action: 'ping', id: 1, padding: 'x'.repeat(1024 * 1024) });
    expect((await socket.closed).code).toBe(1009);
    let closed: Entry | undefined;
    await waitFor(
      async () => {
        closed = (await tail()).find((e) => e.type === 'connection.closed' && e.principal === `apikey:${id}`);
        return closed !== undefined;
      },
      { what: 'the connection.closed entry' },
    );
    expect(closed).toMatchObject({ outcome: 'ok', replica: 'B', details: { code: 1009, closedBy: 'gateway' } });
  });
});

describe('audit payloads', () => {
  it('records call data only when configured', async () => {
    for (const [payloads, expected] of [
      ['false', undefined],
      ['true', '{"card":"4242"}'],
    ] as const) {
      const cluster = await startCluster({ replicas: 1, env: { OPENCLAW_AUDIT_PAYLOADS: payloads } });
      const redis = new Redis(cluster.redis.url);
      try {
        const agent = await startAgent(cluster.gateways[0]!.url, { name: 'pay' });
        const caller = await TestSocket.open(cluster.gateways[0]!.url);
        expect(
          await caller.request({ action: 'coordinator', id: 1, agent: 'pay', task: 't', data: { card: '4242' } }),
        ).toMatchObject({ ok: true });
        await Promise.all([caller.close(), agent.close()]);
        const log = new AuditLog({
          redis,
          keys: new RedisKeys(cluster.keyPrefix),
          replicaId: 'test',
          secret: '',
          logger: silentLogger(),
        });
        let routed: { details?: Record<string, unknown> } | undefined;
        await waitFor(
          async () => {
            routed = (await log.read('default')).find((e) => e.type === 'task.routed');
            return routed !== undefined;
          },
          { what: 'the task.routed entry' },
        );
        expect(routed?.details?.data).toBe(expected);
      } finally {
        redis.disconnect();
        await cluster.stop();
      }
    }
  });
});

describe('audit required', () => {
  it('refuses requests while the trail cannot be written, and serves again when it can', async () => {
    const cluster = await startCluster({ replicas: 1, env: { OPENCLAW_AUDIT_REQUIRED: 'true' } });
    const s = await TestSocket.open(cluster.gateways[0]!.url);
    try {
      expect(await s.request({ action: 'ping', id: 1 })).toMatchObject({ ok: true });
      await cluster.redis.kill();
      // The replica knows the trail cannot be written once it sees Redis gone.
      await waitFor(async () => (await fetch(`${cluster.gateways[0]!.httpUrl}/readyz`)).status === 503, {
        what: 'the replica to notice Redis is gone',
      });
      expect(await s.request({ action: 'ping', id: 2 })).toMatchObject({
        ok: false,
        error: { code: 'UNAVAILABLE', message: 'the audit trail cannot be written now; refusing to serve unaudited' },
      });
      await cluster.redis.restart();
      let n = 3;
      await waitFor(async () => (await s.request({ action: 'ping', id: n++ })).ok === true, {
        what: 'pings to be served again',
        timeoutMs: 20_000,
        intervalMs: 250,
      });
    } finally {
      await s.close();
      await cluster.stop();
    }
  });
});
