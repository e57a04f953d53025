import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type AuditEntry, AuditLog, type AuditVerification, RedisKeys, silentLogger } from '@openclaw/core';
import Redis from 'ioredis';
import { runCli } from '../helpers/cli';
import { type Cluster, startCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';

const ADMIN = 'bootstrap-admin-key-0123456789';
const SECRET = 'a'.repeat(40);

/**
 * The audit archive: entries past Redis's recent window move to append-only files, and the trail
 * stays one verifiable chain across both. The first test runs the replica's own archiving; the
 * others drive an {@link AuditLog} directly, under a key prefix of their own that the replica does
 * not archive, with small segments so that a trail spans several files.
 */
describe('audit archive', () => {
  let cluster: Cluster;
  let redis: Redis;
  const replicaArchive = mkdtempSync(path.join(tmpdir(), 'openclaw-audit-archive-'));
  const ownArchive = mkdtempSync(path.join(tmpdir(), 'openclaw-audit-own-'));
  const ownKeys = new RedisKeys('archive-test');
  const logs: AuditLog[] = [];

  /** A writer and archiver of trails under the test's own prefix, segments of about 10 entries. */
  const auditLog = (): AuditLog => {
    const log = new AuditLog({
      redis,
      keys: ownKeys,
      replicaId: 'T',
      secret: SECRET,
      logger: silentLogger(),
      archiveDir: ownArchive,
      archiveSegmentBytes: 3000,
    });
    logs.push(log);
    return log;
  };
  const write = async (log: AuditLog, tenant: string, from: number, to: number): Promise<void> => {
    for (let i = from; i <= to; i++) log.record(tenant, { type: 'test.event', outcome: 'ok', details: { i } });
    await log.drain();
  };
  const segments = (tenant: string): string[] =>
    readdirSync(path.join(ownArchive, `t-${tenant}`))
      .filter((name) => name.endsWith('.jsonl'))
      .sort()
      .map((name) => path.join(ownArchive, `t-${tenant}`, name));
  const lines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter(Boolean);
  /** Moves everything written so far (the clock past the last entry first). */
  const moveAll = async (log: AuditLog, tenant: string): Promise<number> => {
    const last = Number((await log.tail(tenant, 1))[0]!.id.split('-')[0]);
    await waitFor(() => Date.now() > last + 1, { what: 'the clock to pass the last entry', intervalMs: 1 });
    return log.moveToArchive(tenant, Date.now());
  };

  /** `GET /v1/audit...` on the replica, as an operator. */
  const get = async (pathAndQuery: string): Promise<unknown> => {
    const res = await fetch(`${cluster.gateways[0]!.httpUrl}${pathAndQuery}`, { headers: { 'x-api-key': ADMIN } });
    expect(res.status).toBe(200);
    return res.json();
  };

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 1,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: {
        OPENCLAW_API_KEY_SECRET: 'k'.repeat(40),
        OPENCLAW_AUDIT_SECRET: SECRET,
        OPENCLAW_AUDIT_ARCHIVE_DIR: replicaArchive,
        OPENCLAW_AUDIT_ARCHIVE_AFTER_MS: '1000',
      },
    });
    redis = new Redis(cluster.redis.url);
    await redis.ping();
  });
  afterAll(async () => {
    await Promise.all(logs.map((log) => log.drain()));
    redis.disconnect();
    await cluster.stop();
    rmSync(replicaArchive, { recursive: true, force: true });
    rmSync(ownArchive, { recursive: true, force: true });
  });

  it('moves entries past the window out of Redis, and verifies, exports, pages and tails across both', async () => {
    const keys = new RedisKeys(cluster.keyPrefix);
    const tenant = 'acme';
    // Written as another replica writes them; the replica under test moves them.
    const writer = new AuditLog({ redis, keys, replicaId: 'W', secret: SECRET, logger: silentLogger() });
    logs.push(writer);
    await write(writer, tenant, 1, 30);
    await waitFor(async () => (await redis.xlen(keys.audit(tenant))) === 0, {
      what: 'the replica to move the entries to its archive',
      timeoutMs: 15_000,
    });
    expect(readdirSync(path.join(replicaArchive, `t-${tenant}`)).some((name) => name.endsWith('.jsonl'))).toBe(true);
    await write(writer, tenant, 31, 35);

    expect(await get(`/v1/audit/verify?tenant=${tenant}`)).toEqual({
      ok: true,
      tenants: [{ tenant, ok: true, entries: 35, firstSeq: 1, lastSeq: 35, keyed: true }],
    });
    const url = cluster.gateways[0]!.httpUrl;
    const verified = await runCli(['audit', 'verify', '--tenant', tenant, '--url', url, '--api-key', ADMIN]);
    expect(verified).toMatchObject({ code: 0, stdout: `${tenant}: ok, 35 entries, sequence 1 to 35\n` });

    const exported = await runCli([
      'audit',
      'export',
      '--tenant',
      tenant,
      '--since',
      '1h',
      '--url',
      url,
      '--api-key',
      ADMIN,
    ]);
    expect(exported.code).toBe(0);
    const entries = exported.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as AuditEntry);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 35 }, (_, i) => i + 1));
    expect(entries.map((e) => e.details?.i)).toEqual(Array.from({ length: 35 }, (_, i) => i + 1));

    // Page by page, each after the last entry of the one before.
    const paged: AuditEntry[] = [];
    for (let after = ''; ; ) {
      const page = (await get(`/v1/audit?tenant=${tenant}&since=1h&limit=8${after}`)) as AuditEntry[];
      paged.push(...page);
      if (page.length < 8) break;
      after = `&after=${page.at(-1)!.id}`;
    }
    expect(paged.map((e) => e.seq)).toEqual(entries.map((e) => e.seq));

    // The newest 8: whatever part of them is still in Redis, and the rest from the archive.
    const tail = (await get(`/v1/audit?tenant=${tenant}&limit=8`)) as AuditEntry[];
    expect(tail.map((e) => e.seq)).toEqual([28, 29, 30, 31, 32, 33, 34, 35]);

    const bad = await fetch(`${url}/v1/audit?tenant=${tenant}&since=1h&after=yesterday`, {
      headers: { 'x-api-key': ADMIN },
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      error: { code: 'BAD_REQUEST', message: 'after: expected an audit entry id such as 1733212800000-0' },
    });
  }, 30_000);

  it('refuses to start a replica whose archive folder cannot be written, and says why', async () => {
    const notAFolder = path.join(ownArchive, 'a-file');
    writeFileSync(notAFolder, '');
    const started = await runCli(['gateway', 'start', '--auth', 'none', '--port', '0', '--redis', cluster.redis.url], {
      OPENCLAW_AUDIT_ARCHIVE_DIR: path.join(notAFolder, 'audit'),
      OPENCLAW_LOG_FORMAT: 'json',
    });
    expect(started.code).toBe(1);
    const fatal = started.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { msg: string; err?: string })
      .find((r) => r.msg === 'gateway failed to start');
    expect(fatal?.err).toMatch(new RegExp(`^OPENCLAW_AUDIT_ARCHIVE_DIR: cannot write to ${notAFolder}/audit: ENOTDIR`));
  });

  it('keeps the chain whole over several segments and several moves, and reads a span from them', async () => {
    const log = auditLog();
    const tenant = 'segments';
    await write(log, tenant, 1, 25);
    expect(await moveAll(log, tenant)).toBe(25);
    await write(log, tenant, 26, 50);
    expect(await moveAll(log, tenant)).toBe(25);
    await write(log, tenant, 51, 55);
    expect(await redis.xlen(ownKeys.audit(tenant))).toBe(5);
    expect(segments(tenant).length).toBeGreaterThanOrEqual(4);
    expect(segments(tenant).flatMap(lines)).toHaveLength(50);
    expect(await log.verify(tenant)).toEqual({ tenant, ok: true, entries: 55, firstSeq: 1, lastSeq: 55, keyed: true });

    const all = await log.read(tenant);
    expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 55 }, (_, i) => i + 1));
    const span = await log.read(tenant, all[20]!.id, all[52]!.id);
    expect(span.map((e) => e.seq)).toEqual(Array.from({ length: 33 }, (_, i) => i + 21));
    expect((await log.read(tenant, all[20]!.id, '+', 4)).map((e) => e.seq)).toEqual([21, 22, 23, 24]);
    expect((await log.tail(tenant, 7)).map((e) => e.seq)).toEqual([49, 50, 51, 52, 53, 54, 55]);
  });

  it('detects an archived entry changed, and archived segments removed at the start, in the middle or at the end', async () => {
    const log = auditLog();
    const trail = async (tenant: string): Promise<string[]> => {
      await write(log, tenant, 1, 40);
      await moveAll(log, tenant);
      await write(log, tenant, 41, 45);
      expect(await log.verify(tenant)).toMatchObject({ ok: true, entries: 45 });
      return segments(tenant);
    };

    const changed = await trail('changed');
    const text = readFileSync(changed[1]!, 'utf8');
    const line = lines(changed[1]!)[2]!;
    const { id } = JSON.parse(line) as { id: string };
    writeFileSync(changed[1]!, text.replace(line, line.replace('"outcome\\":\\"ok\\"', '"outcome\\":\\"no\\"')));
    expect(await log.verify('changed')).toMatchObject({
      ok: false,
      broken: { id, reason: 'its content does not match its hash (changed entry)' },
    });

    const first = await trail('first');
    unlinkSync(first[0]!);
    expect(await log.verify('first')).toMatchObject({
      ok: false,
      broken: {
        reason:
          'the archive does not start with the first entry and has no sealed anchor: entries removed at the start',
      },
    });

    const middle = await trail('middle');
    const missing = lines(middle[1]!).length;
    unlinkSync(middle[1]!);
    const broken = await log.verify('middle');
    expect(broken).toMatchObject({ ok: false });
    expect(broken.broken?.reason).toMatch(/does not follow the entry before it|entries missing before it/);
    expect(missing).toBeGreaterThan(0);

    const last = await trail('last');
    unlinkSync(last.at(-1)!);
    expect((await log.verify('last')).broken?.reason).toMatch(/are neither in the archive nor in Redis/);
  });

  it('reads past a line cut short by a crash and repairs it on the next move', async () => {
    const log = auditLog();
    const tenant = 'torn';
    await write(log, tenant, 1, 12);
    await moveAll(log, tenant);
    // A write that a crash cut short: the archive's entries are still in Redis, the line is not whole.
    appendFileSync(segments(tenant).at(-1)!, '{"id":"17000');
    expect(await log.verify(tenant)).toMatchObject({ ok: true, entries: 12 });
    await write(log, tenant, 13, 20);
    expect(await moveAll(log, tenant)).toBe(8);
    const all = segments(tenant).flatMap(lines);
    expect(all).toHaveLength(20);
    expect(all.every((l) => JSON.parse(l))).toBe(true);
    expect(await log.verify(tenant)).toEqual({ tenant, ok: true, entries: 20, firstSeq: 1, lastSeq: 20, keyed: true });
  });

  it('passes over entries already archived when a move stopped before removing them from Redis', async () => {
    const log = auditLog();
    const tenant = 'twice';
    await write(log, tenant, 1, 6);
    await moveAll(log, tenant);
    await write(log, tenant, 7, 15);
    // The move of entries 7 to 15 wrote the archive, then stopped: they are in both.
    const rows = (await redis.xrange(ownKeys.audit(tenant), '-', '+')) as [string, string[]][];
    appendFileSync(
      segments(tenant).at(-1)!,
      rows.map(([id, fields]) => `${JSON.stringify({ id, body: fields[1], hash: fields[3] })}\n`).join(''),
    );
    expect(await log.verify(tenant)).toEqual({ tenant, ok: true, entries: 15, firstSeq: 1, lastSeq: 15, keyed: true });
    expect((await log.read(tenant)).map((e) => e.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    await write(log, tenant, 16, 18);
    await moveAll(log, tenant);
    expect(segments(tenant).flatMap(lines)).toHaveLength(18);
    expect(await redis.xlen(ownKeys.audit(tenant))).toBe(0);
    expect(await log.verify(tenant)).toEqual({ tenant, ok: true, entries: 18, firstSeq: 1, lastSeq: 18, keyed: true });
  });

  it('removes whole archived segments past retention behind a sealed anchor, and detects the anchor rewritten', async () => {
    const log = auditLog();
    const tenant = 'expiry';
    await write(log, tenant, 1, 40);
    await moveAll(log, tenant);
    const before = segments(tenant);
    expect(before.length).toBeGreaterThanOrEqual(3);
    expect(await log.expireArchive(tenant, Date.now())).toBe(before.length - 1);
    expect(segments(tenant)).toEqual([before.at(-1)]);
    const kept = lines(before.at(-1)!);
    const firstKept = (JSON.parse((JSON.parse(kept[0]!) as { body: string }).body) as { seq: number }).seq;
    expect(await log.verify(tenant)).toEqual({
      tenant,
      ok: true,
      entries: kept.length,
      firstSeq: firstKept,
      lastSeq: 40,
      keyed: true,
    });

    const anchor = path.join(ownArchive, `t-${tenant}`, 'anchor.json');
    const sealed = JSON.parse(readFileSync(anchor, 'utf8')) as { seq: number; prev: string; mac: string };
    writeFileSync(anchor, JSON.stringify({ ...sealed, seq: sealed.seq - 5 }));
    expect(await log.verify(tenant)).toMatchObject({
      ok: false,
      broken: { id: 'start', reason: "the archive's sealed anchor is not valid (rewritten without the audit secret)" },
    });
  });

  it('starts the archive where Redis starts when retention trimmed Redis before archiving began', async () => {
    const log = auditLog();
    const tenant = 'late';
    await write(log, tenant, 1, 6);
    const cut = Number((await log.tail(tenant, 1))[0]!.id.split('-')[0]) + 1;
    await waitFor(() => Date.now() > cut, { what: 'the clock to pass entry 6', intervalMs: 1 });
    await write(log, tenant, 7, 10);
    expect(await log.trim(tenant, cut)).toBe(6);
    expect(await moveAll(log, tenant)).toBe(4);
    expect(await log.verify(tenant)).toEqual({ tenant, ok: true, entries: 4, firstSeq: 7, lastSeq: 10, keyed: true });
  });

  it('refuses to move entries when Redis was cut without archiving them, and says why', async () => {
    const log = auditLog();
    const tenant = 'gap';
    await write(log, tenant, 1, 5);
    await moveAll(log, tenant);
    await write(log, tenant, 6, 8);
    const cut = Number((await log.tail(tenant, 1))[0]!.id.split('-')[0]) + 1;
    await waitFor(() => Date.now() > cut, { what: 'the clock to pass entry 8', intervalMs: 1 });
    await write(log, tenant, 9, 12);
    // A process without the archive trims Redis by retention: entries 6 to 8 are gone from both.
    expect(await log.trim(tenant, cut)).toBe(3);
    expect(await log.moveToArchive(tenant, Date.now())).toBe(0);
    const verdict: AuditVerification = await log.verify(tenant);
    expect(verdict.ok).toBe(false);
    expect(verdict.broken?.reason).toMatch(/neither in the archive nor in Redis/);
  });
});
