import { createHash, createHmac } from 'node:crypto';
import { AuditLog, type AuditVerification, RedisKeys, silentLogger } from '@openclaw/core';
import Redis from 'ioredis';
import { runCli } from '../helpers/cli';
import { type Cluster, startCluster } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';

const ADMIN = 'bootstrap-admin-key-0123456789';
const SECRET = 'a'.repeat(40);

/**
 * Someone with write access to Redis but not the audit secret cuts entries off either end of a trail
 * and rewrites what marks that end, as they can with a plain client: `audit verify` must say so.
 * Each test has a tenant of its own, written by an {@link AuditLog} as a replica writes it.
 */
describe('audit trail cut at either end', () => {
  let cluster: Cluster;
  let redis: Redis;
  let keys: RedisKeys;
  const logs: AuditLog[] = [];

  /** A writer of the trail with the cluster's secret, as another replica. */
  const replica = (id: string): AuditLog => {
    const log = new AuditLog({ redis, keys, replicaId: id, secret: SECRET, logger: silentLogger() });
    logs.push(log);
    return log;
  };
  const write = async (log: AuditLog, tenant: string, from: number, to: number): Promise<void> => {
    for (let i = from; i <= to; i++) log.record(tenant, { type: 'test.event', outcome: 'ok', details: { i } });
    await log.drain();
  };
  const rows = async (tenant: string) => (await redis.xrange(keys.audit(tenant), '-', '+')) as [string, string[]][];
  const hashOf = (row: [string, string[]]) => row[1][row[1].indexOf('hash') + 1]!;
  const prevOf = (row: [string, string[]]) =>
    (JSON.parse(row[1][row[1].indexOf('body') + 1]!) as { prev: string }).prev;
  const ms = (id: string) => Number(id.split('-')[0]);
  /** Waits until the clock has passed an entry's millisecond, so the next entries have later stream times. */
  const clockPast = (id: string) => waitFor(() => Date.now() > ms(id) + 1, { what: `the clock to pass ${id}` });

  /** `GET /v1/audit/verify?tenant=`, as an operator. */
  const verify = async (tenant: string): Promise<AuditVerification> => {
    const res = await fetch(`${cluster.gateways[0]!.httpUrl}/v1/audit/verify?tenant=${tenant}`, {
      headers: { 'x-api-key': ADMIN },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ok: boolean; tenants: AuditVerification[] };
    expect(body.tenants).toHaveLength(1);
    expect(body.ok).toBe(body.tenants[0]!.ok);
    return body.tenants[0]!;
  };
  const cli = (tenant: string) =>
    runCli(['audit', 'verify', '--tenant', tenant, '--url', cluster.gateways[0]!.httpUrl, '--api-key', ADMIN]);

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 1,
      auth: 'apikey',
      apiKeys: [ADMIN],
      env: { OPENCLAW_API_KEY_SECRET: 'k'.repeat(40), OPENCLAW_AUDIT_SECRET: SECRET },
    });
    redis = new Redis(cluster.redis.url);
    // An AuditLog writes only on a ready connection.
    await redis.ping();
    keys = new RedisKeys(cluster.keyPrefix);
  });
  afterAll(async () => {
    await Promise.all(logs.map((log) => log.drain()));
    redis.disconnect();
    await cluster.stop();
  });

  it('detects the newest entries removed and the head rewritten, and appends after the cut do not hide it', async () => {
    const tenant = 'cut-end';
    await write(replica('R1'), tenant, 1, 10);
    expect(await verify(tenant)).toEqual({ tenant, ok: true, entries: 10, firstSeq: 1, lastSeq: 10, keyed: true });
    expect(await cli(tenant)).toMatchObject({ code: 0, stdout: `${tenant}: ok, 10 entries, sequence 1 to 10\n` });

    // The attack that used to verify: delete the newest 3 and set the head to the new last entry's hash.
    const all = await rows(tenant);
    await redis.xdel(keys.audit(tenant), ...all.slice(7).map(([id]) => id));
    await redis.set(keys.auditHead(tenant), hashOf(all[6]!));
    const reason = 'the trail ends at sequence number 7 but its sealed head is 10: 3 entries removed at the end';
    expect(await verify(tenant)).toEqual({
      tenant,
      ok: false,
      entries: 7,
      firstSeq: 1,
      lastSeq: 7,
      keyed: true,
      broken: { id: 'end', reason },
    });
    expect(await cli(tenant)).toMatchObject({
      code: 1,
      stdout: `${tenant}: BROKEN at entry end: ${reason} (7 entries read)\n`,
    });

    // Another replica (nothing cached) appends after the cut: it numbers on from the sealed head.
    await write(replica('R2'), tenant, 11, 11);
    expect((await verify(tenant)).broken).toEqual({
      id: (await rows(tenant))[7]![0],
      reason: 'it has sequence number 11 where 8 was expected: 3 entries missing before it',
    });
  });

  it('detects a sealed head rewritten or removed without the secret', async () => {
    const tenant = 'forged-head';
    await write(replica('R1'), tenant, 1, 6);
    const all = await rows(tenant);
    await redis.xdel(keys.audit(tenant), all[5]![0]);
    await redis.set(keys.auditHead(tenant), hashOf(all[4]!));
    // What an attacker can compute: the MAC as if there were no secret, or any other guess.
    const guess = createHash('sha256')
      .update(`openclaw-audit-head\n${tenant}\n5\n${hashOf(all[4]!)}`)
      .digest('hex');
    await redis.set(keys.auditSealedHead(tenant), JSON.stringify({ seq: 5, hash: hashOf(all[4]!), mac: guess }));
    expect(await verify(tenant)).toMatchObject({
      ok: false,
      broken: { id: 'end', reason: 'the sealed head is not valid (rewritten without the audit secret)' },
    });
    const forged = await cli(tenant);
    expect(forged.code).toBe(1);
    expect(forged.stdout).toContain('BROKEN at entry end: the sealed head is not valid');

    await redis.del(keys.auditSealedHead(tenant));
    expect(await verify(tenant)).toMatchObject({
      ok: false,
      broken: { id: 'end', reason: 'the sealed head is missing (removed)' },
    });
    expect((await cli(tenant)).stdout).toContain('BROKEN at entry end: the sealed head is missing (removed)');
  });

  it('detects the oldest entries within retention removed and the anchor rewritten, and retention does not hide it', async () => {
    const tenant = 'cut-start';
    const log = replica('R1');
    await write(log, tenant, 1, 4);
    await clockPast((await rows(tenant))[3]![0]);
    await write(log, tenant, 5, 10);
    const all = await rows(tenant);
    expect(await log.trim(tenant, ms(all[4]![0]))).toBe(4);
    expect(await verify(tenant)).toEqual({ tenant, ok: true, entries: 6, firstSeq: 5, lastSeq: 10, keyed: true });

    // The attack that used to verify: delete the 2 oldest kept entries and set the anchor to what the
    // new first entry follows.
    await redis.xdel(keys.audit(tenant), all[4]![0], all[5]![0]);
    await redis.set(keys.auditAnchor(tenant), prevOf(all[6]!));
    const reason =
      'the trail does not start where its sealed anchor says (sequence number 5): entries removed at the start';
    expect(await verify(tenant)).toEqual({
      tenant,
      ok: false,
      entries: 0,
      keyed: true,
      broken: { id: all[6]![0], reason },
    });
    expect(await cli(tenant)).toMatchObject({
      code: 1,
      stdout: `${tenant}: BROKEN at entry ${all[6]![0]}: ${reason} (0 entries read)\n`,
    });

    // The next retention pass cuts past the gap: it refuses, so the gap is not sealed over.
    expect(await log.trim(tenant, ms(all[8]![0]))).toBe(0);
    expect((await rows(tenant)).map(([id]) => id)).toEqual(all.slice(6).map(([id]) => id));
    expect((await verify(tenant)).broken).toEqual({ id: all[6]![0], reason });

    // A sealed anchor rewritten without the secret, or removed.
    await redis.set(
      keys.auditSealedAnchor(tenant),
      JSON.stringify({ seq: 7, prev: prevOf(all[6]!), mac: createHmac('sha256', 'guess').update('x').digest('hex') }),
    );
    expect(await verify(tenant)).toMatchObject({
      ok: false,
      broken: { id: 'start', reason: 'the sealed anchor is not valid (rewritten without the audit secret)' },
    });
    expect((await cli(tenant)).stdout).toContain('BROKEN at entry start: the sealed anchor is not valid');
    await redis.del(keys.auditSealedAnchor(tenant));
    expect(await verify(tenant)).toMatchObject({
      ok: false,
      broken: {
        id: all[6]![0],
        reason: 'the trail does not start with its first entry and has no sealed anchor: entries removed at the start',
      },
    });
  });

  it('detects the oldest entries removed from a trail never trimmed', async () => {
    const tenant = 'cut-start-untrimmed';
    await write(replica('R1'), tenant, 1, 5);
    const all = await rows(tenant);
    await redis.xdel(keys.audit(tenant), all[0]![0], all[1]![0]);
    await redis.set(keys.auditAnchor(tenant), prevOf(all[2]!));
    expect(await verify(tenant)).toMatchObject({
      ok: false,
      broken: {
        id: all[2]![0],
        reason: 'the trail does not start with its first entry and has no sealed anchor: entries removed at the start',
      },
    });
  });

  it('keeps a sound trail verifiable through trims, appends from two replicas, and a trim of everything', async () => {
    const tenant = 'retained';
    const [a, b] = [replica('R1'), replica('R2')];
    await write(a, tenant, 1, 3);
    await clockPast((await rows(tenant))[2]![0]);
    await write(b, tenant, 4, 6);
    let all = await rows(tenant);
    expect(await a.trim(tenant, ms(all[3]![0]))).toBe(3);
    expect(await verify(tenant)).toEqual({ tenant, ok: true, entries: 3, firstSeq: 4, lastSeq: 6, keyed: true });

    // A trim that has nothing to remove changes nothing.
    expect(await b.trim(tenant, ms(all[3]![0]))).toBe(0);
    await clockPast(all[5]![0]);
    await write(a, tenant, 7, 8);
    all = await rows(tenant);
    expect(await b.trim(tenant, ms(all[3]![0]))).toBe(3);
    expect(await verify(tenant)).toEqual({ tenant, ok: true, entries: 2, firstSeq: 7, lastSeq: 8, keyed: true });
    expect(await cli(tenant)).toMatchObject({ code: 0, stdout: `${tenant}: ok, 2 entries, sequence 7 to 8\n` });

    // Everything past retention: the anchor then says the next entry is number 9.
    await clockPast(all[4]![0]);
    expect(await a.trim(tenant, Date.now())).toBe(2);
    expect(await verify(tenant)).toEqual({ tenant, ok: true, entries: 0, keyed: true });
    await write(b, tenant, 9, 9);
    expect(await verify(tenant)).toEqual({ tenant, ok: true, entries: 1, firstSeq: 9, lastSeq: 9, keyed: true });
  });

  it('does not detect an older copy of the trail and its sealed head put back (rollback)', async () => {
    const tenant = 'rollback';
    const log = replica('R1');
    await write(log, tenant, 1, 4);
    const [head, sealed] = await redis.mget(keys.auditHead(tenant), keys.auditSealedHead(tenant));
    await write(log, tenant, 5, 6);
    const all = await rows(tenant);
    await redis.xdel(keys.audit(tenant), all[4]![0], all[5]![0]);
    await redis.mset(keys.auditHead(tenant), head!, keys.auditSealedHead(tenant), sealed!);
    // What docs/observability.md says: only a copy of the sealed head kept elsewhere shows this.
    expect(await verify(tenant)).toEqual({ tenant, ok: true, entries: 4, firstSeq: 1, lastSeq: 4, keyed: true });
  });

  it('verifies trails of the earlier format once a replica of this version seals them', async () => {
    // Written as the version before sequence numbers wrote: no seq, a plain head, a plain anchor.
    const chain = (prev: string, body: string) => createHmac('sha256', SECRET).update(`${prev}\n${body}`).digest('hex');
    const legacy = async (tenant: string, n: number): Promise<string> => {
      let prev = (await redis.get(keys.auditHead(tenant))) ?? '';
      for (let i = 0; i < n; i++) {
        const body = JSON.stringify({ ts: Date.now(), tenant, prev, type: 'old.event', outcome: 'ok', replica: 'old' });
        const hash = chain(prev, body);
        await redis.xadd(keys.audit(tenant), '*', 'body', body, 'hash', hash);
        prev = hash;
      }
      await redis.set(keys.auditHead(tenant), prev);
      await redis.sadd(keys.auditTenants(), tenant);
      return prev;
    };
    const tenant = 'legacy';
    await legacy(tenant, 3);
    // Retention as that version trimmed: the oldest entry, and a plain anchor.
    const old = await rows(tenant);
    await redis.xdel(keys.audit(tenant), old[0]![0]);
    await redis.set(keys.auditAnchor(tenant), prevOf(old[1]!));
    expect(await verify(tenant)).toMatchObject({
      ok: false,
      broken: {
        id: 'end',
        reason:
          'the trail is not sealed (written by a version before sealed heads); a replica of this version seals it when it starts',
      },
    });

    // A replica of this version starts, and seals every trail it finds unsealed.
    const c = await cluster.addReplica('C');
    await waitFor(async () => (await verify(tenant)).ok, { what: 'replica C to seal the trail' });
    expect(await verify(tenant)).toEqual({
      tenant,
      ok: true,
      entries: 3,
      firstSeq: 1,
      lastSeq: 1,
      unsequenced: 2,
      keyed: true,
    });
    const sealing = (await rows(tenant))[2]!;
    expect(JSON.parse(sealing[1][sealing[1].indexOf('body') + 1]!)).toMatchObject({
      seq: 1,
      type: 'audit.sealed',
      replica: 'C',
      details: { reason: 'no sealed head' },
    });
    expect(await cli(tenant)).toMatchObject({
      code: 0,
      stdout: `${tenant}: ok, 3 entries, sequence 1 to 1, 2 of them without sequence numbers (written by an earlier version)\n`,
    });

    // During a rolling update a replica of the earlier version appends after the sealed head: that
    // end is not sealed until a replica of this version appends again.
    await legacy(tenant, 1);
    expect((await verify(tenant)).broken).toEqual({
      id: 'end',
      reason:
        'the last 1 entries follow the sealed head without sequence numbers (written by a replica of an earlier version); the next entry a replica of this version writes seals them',
    });
    await write(replica('R1'), tenant, 1, 1);
    expect(await verify(tenant)).toMatchObject({ ok: true, entries: 5, firstSeq: 1, lastSeq: 2, unsequenced: 3 });
    await c.stop();
  });
});
