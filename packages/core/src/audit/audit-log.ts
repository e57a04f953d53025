import { LuaScript } from '../redis/lua-script';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { AuditArchive } from './audit-archive';
import { AuditChain } from './audit-chain';
import { type AuditEntry, type AuditEvent, parseEntry, type StreamRow } from './audit-entry';
import { type AuditVerification, AuditVerifier } from './audit-verifier';
import { AuditWriter } from './audit-writer';

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  redis: RedisClient;
  keys: RedisKeys;
  replicaId: string;
  /**
   * HMAC key of the chain and of its sealed head and anchor; empty: plain SHA-256, which detects
   * accidental damage, not a rewrite by someone with write access to Redis.
   */
  secret: string;
  logger: Logger;
  /**
   * Folder of the archive (`OPENCLAW_AUDIT_ARCHIVE_DIR`), the same volume on every replica: entries
   * older than Redis's recent window move there. Empty or absent: they stay in Redis.
   */
  archiveDir?: string;
  /** Size past which the archive begins a new segment (default 64 MiB; a new one each UTC day too). */
  archiveSegmentBytes?: number;
}

/** How long a process may hold a tenant's archiving lock (it is released when done). */
const ARCHIVE_LOCK_MS = 120_000;

/** Releases a lock if this process still holds it. KEYS: lock. ARGV: holder. */
const RELEASE = new LuaScript(
  'audit-lock-release',
  1,
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
);

/**
 * The audit trail: one Redis Stream per tenant, each entry chained to the previous one by a keyed
 * hash and numbered, so a changed, removed or reordered entry breaks the chain (`verify`). Both ends
 * are sealed with the key: the sealed head names the last entry's number and hash, and after
 * retention trimming the sealed anchor names the first kept entry's number and the hash it follows,
 * so cutting entries off either end is detected too, unless the one cutting holds the secret.
 * Appends are queued per tenant and written in batches by one atomic script, so the request path
 * never waits for them; if another replica appended meanwhile, the batch is chained again on the
 * new head and retried. A failed write is counted (`failures`) and logged, never thrown into a request.
 *
 * The keyed hashes are {@link AuditChain}'s; appending is {@link AuditWriter}'s; verifying and
 * trimming walk the trail with {@link AuditVerifier}.
 */
export class AuditLog {
  private readonly chain: AuditChain;
  private readonly writer: AuditWriter;
  private readonly verifier: AuditVerifier;

  private readonly archive: AuditArchive | undefined;

  constructor(private readonly options: AuditLogOptions) {
    const { redis, keys, replicaId, logger } = options;
    this.chain = new AuditChain(options.secret);
    this.archive = options.archiveDir
      ? new AuditArchive(options.archiveDir, this.chain, options.archiveSegmentBytes)
      : undefined;
    this.writer = new AuditWriter({ redis, keys, replicaId, chain: this.chain, logger });
    this.verifier = new AuditVerifier({
      redis,
      keys,
      chain: this.chain,
      logger,
      ...(this.archive ? { archive: this.archive } : {}),
    });
  }

  /**
   * Checks that the archive's folder, if there is one, can be written.
   * @throws {Error} naming the folder and what went wrong.
   */
  async checkArchive(): Promise<void> {
    if (this.options.archiveDir) await AuditArchive.checkWritable(this.options.archiveDir);
  }

  /** Whether entries are moved out of Redis to an archive. */
  get archived(): boolean {
    return this.archive !== undefined;
  }

  /** Entries that could not be written. */
  get failures(): number {
    return this.writer.failures;
  }

  /** Records an event for a tenant. Returns at once; the write happens in the background. */
  record(tenant: string, event: AuditEvent): void {
    this.writer.record(tenant, event);
  }

  /** Resolves once everything recorded so far has been written (or has failed). */
  drain(): Promise<void> {
    return this.writer.drain();
  }

  /**
   * Entries of a tenant, oldest first, between two stream ids or times (inclusive), at most `count`:
   * from the archive, then from Redis.
   */
  async read(tenant: string, from = '-', to = '+', count = 10_000): Promise<AuditEntry[]> {
    const { redis, keys } = this.options;
    // Redis first: entries moved to the archive meanwhile are still in this answer.
    const recent = (await redis.xrange(keys.audit(tenant), from, to, 'COUNT', count)) as StreamRow[];
    const rows: StreamRow[] = [];
    if (this.archive) {
      const low = idBound(from, 0);
      const high = idBound(to, Number.MAX_SAFE_INTEGER);
      for await (const row of this.archive.rows(tenant, 0, low[0])) {
        if (compareIds(row[0], low) < 0) continue;
        if (compareIds(row[0], high) > 0 || rows.length >= count) break;
        rows.push(row);
      }
    }
    const last = rows.at(-1)?.[0];
    for (const row of recent) {
      if (rows.length >= count) break;
      if (last === undefined || compareIds(row[0], idBound(last, 0)) > 0) rows.push(row);
    }
    return rows.map(([id, fields]) => parseEntry(tenant, id, fields));
  }

  /** The last `count` entries of a tenant, oldest first (from Redis, then the archive before them). */
  async tail(tenant: string, count: number): Promise<AuditEntry[]> {
    const { redis, keys } = this.options;
    const rows = ((await redis.xrevrange(keys.audit(tenant), '+', '-', 'COUNT', count)) as StreamRow[]).reverse();
    if (this.archive && rows.length < count) {
      const first = rows[0] ? parseEntry(tenant, rows[0][0], rows[0][1]).seq : undefined;
      rows.unshift(...(await this.archive.tail(tenant, count - rows.length, first)));
    }
    return rows.map(([id, fields]) => parseEntry(tenant, id, fields));
  }

  /**
   * Moves a tenant's entries older than `before` (epoch ms) to the archive, if this process is the
   * one doing it now (a lock in Redis). @returns how many entries were moved.
   */
  async moveToArchive(tenant: string, before: number): Promise<number> {
    if (!this.archive) return 0;
    const { redis, keys, replicaId } = this.options;
    const lock = keys.auditArchiveLock(tenant);
    if ((await redis.set(lock, replicaId, 'PX', ARCHIVE_LOCK_MS, 'NX')) !== 'OK') return 0;
    try {
      // Half the lock's lifetime at most, so that the lock never expires while entries are moved.
      return await this.verifier.archive(tenant, before, Date.now() + ARCHIVE_LOCK_MS / 2);
    } finally {
      await RELEASE.run(redis, lock, replicaId).catch(() => 0);
    }
  }

  /**
   * Removes a tenant's archived segments whose entries are all older than `before` (epoch ms); the
   * first kept entry becomes the archive's sealed anchor. Only a trail that verifies is cut.
   * @returns how many segments were removed.
   */
  async expireArchive(tenant: string, before: number): Promise<number> {
    if (!this.archive) return 0;
    const { redis, keys, replicaId, logger } = this.options;
    const lock = keys.auditArchiveLock(tenant);
    if ((await redis.set(lock, replicaId, 'PX', ARCHIVE_LOCK_MS, 'NX')) !== 'OK') return 0;
    try {
      const verified = await this.verifier.verify(tenant);
      if (!verified.ok) {
        logger.error({ tenant, ...verified.broken }, 'archived audit entries not removed: the trail does not verify');
        return 0;
      }
      return await this.archive.expire(tenant, before);
    } finally {
      await RELEASE.run(redis, lock, replicaId).catch(() => 0);
    }
  }

  /**
   * Checks a tenant's whole trail: the chain from its sealed anchor (or its first entry) to its sealed
   * head, sequence numbers without gaps, and both seals' MACs. A break is checked again once from the
   * start, so that an append or a trim running meanwhile cannot make a sound trail look broken.
   */
  verify(tenant: string): Promise<AuditVerification> {
    return this.verifier.verify(tenant);
  }

  /**
   * Removes a tenant's entries older than `before` (epoch ms), keeping the rest verifiable: the
   * number and the previous hash of the first kept entry become the chain's sealed anchor, in the same
   * script. The entries removed are checked first (from the current anchor to the first kept entry);
   * if they do not verify, nothing is removed, so that retention never hides a removal or a change.
   * @returns how many entries were removed.
   */
  trim(tenant: string, before: number): Promise<number> {
    return this.verifier.trim(tenant, before);
  }

  /**
   * Seals the end of a tenant's trail when it is not: when a version before sealed heads wrote the
   * trail, or its last entries during a rolling update, or the sealed head does not match. It does so
   * by recording an `audit.sealed` entry the ordinary way, numbered after the last valid sealed head,
   * so it never hides a gap: entries cut from the end still show as missing numbers.
   * @returns whether an entry was recorded.
   */
  async seal(tenant: string): Promise<boolean> {
    const { redis, keys } = this.options;
    const [plain = null, sealed = null] = await redis.mget(keys.auditHead(tenant), keys.auditSealedHead(tenant));
    if (!plain) return false;
    const head = sealed === null ? undefined : this.chain.openHead(tenant, sealed);
    if (head && head.hash === plain) return false;
    this.record(tenant, {
      type: 'audit.sealed',
      outcome: 'ok',
      details: {
        reason:
          sealed === null ? 'no sealed head' : head ? 'entries after the sealed head' : 'the sealed head is not valid',
      },
    });
    return true;
  }

  /** {@link AuditLog.seal} for every tenant; run once when a replica starts. @returns how many were sealed. */
  async sealAll(): Promise<number> {
    let sealed = 0;
    for (const tenant of await this.tenants()) if (await this.seal(tenant)) sealed += 1;
    return sealed;
  }

  /** Whether entries are being written: Redis is up, and no write has failed in the last 5 s. */
  healthy(): boolean {
    return this.writer.healthy();
  }

  /** Tenants that have an audit trail. */
  async tenants(): Promise<string[]> {
    const names = new Set(await this.options.redis.smembers(this.options.keys.auditTenants()));
    for (const name of (await this.archive?.tenants()) ?? []) names.add(name);
    return [...names].sort();
  }
}

/** A stream id, or an epoch ms time, or `-` / `+`, as [ms, seq]; a bare time takes `seq` as given. */
function idBound(text: string, seq: number): [number, number] {
  if (text === '-') return [0, 0];
  if (text === '+') return [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
  const [ms, part] = text.split('-');
  return [Number(ms), part === undefined ? seq : Number(part)];
}

/** Orders a stream id against a bound. */
function compareIds(id: string, [ms, seq]: [number, number]): number {
  const [a, b] = idBound(id, 0);
  return a !== ms ? a - ms : b - seq;
}
