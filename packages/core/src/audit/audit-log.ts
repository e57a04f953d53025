import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type Redis from 'ioredis';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';

/** One audit record as appended: what happened, by whom, with what outcome. Never payloads or secrets. */
export interface AuditEvent {
  /** e.g. `connection.opened`, `auth.failed`, `authz.denied`, `task.routed`, `apikey.revoked`. */
  type: string;
  /** Principal id, when known. */
  principal?: string;
  /** `ok`, or an error code. */
  outcome: string;
  /** Replica that recorded it (filled in by the log). */
  replica?: string;
  /** Small, non-secret facts: agent, task, taskId, permission, address, close code... */
  details?: Record<string, string | number | boolean | null>;
}

/** A stored audit entry. */
export interface AuditEntry extends AuditEvent {
  /** Stream id (`<ms>-<seq>`). */
  id: string;
  /** Epoch ms when it was recorded. */
  ts: number;
  tenant: string;
  /**
   * Position in the tenant's trail: 1, 2, 3... without gaps, kept across retention trimming. Absent on
   * entries written by versions before sequence numbers.
   */
  seq?: number;
  /** Chain hash of the previous entry ('' for the first). */
  prev: string;
  /** This entry's chain hash: HMAC-SHA256(secret, prev + body) (SHA-256 without a secret). */
  hash: string;
}

/** Result of checking a tenant's chain. */
export interface AuditVerification {
  tenant: string;
  ok: boolean;
  /** Entries read. */
  entries: number;
  /** Sequence numbers of the first and last sequenced entries read, when there are any. */
  firstSeq?: number;
  lastSeq?: number;
  /**
   * Entries without a sequence number among them (written by a version before sequence numbers):
   * chained like the others, but removing the oldest of them with the anchor rewritten is not detected.
   */
  unsequenced?: number;
  /**
   * Whether the chain and its sealed head and anchor are keyed by `OPENCLAW_AUDIT_SECRET`. Without a
   * secret, verification shows accidental damage only: anyone who can write to Redis can rewrite all of it.
   */
  keyed: boolean;
  /** The first entry that breaks the chain (or `start` / `end`), and why. */
  broken?: { id: string; reason: string };
}

/**
 * Appends entries when the stored head and sealed head are those expected, or answers both. KEYS:
 * stream, head, sealed head. ARGV: expected head, expected sealed head, new sealed head, then (body,
 * hash) pairs. The keys share a hash tag (one slot). The plain head is what replicas of earlier
 * versions compare, so that their entries still join the one chain during a rolling update.
 */
const APPEND = `
local head = redis.call('GET', KEYS[2]) or ''
local sealed = redis.call('GET', KEYS[3]) or ''
if head ~= ARGV[1] or sealed ~= ARGV[2] then return {0, head, sealed} end
local id
for i = 4, #ARGV, 2 do
  id = redis.call('XADD', KEYS[1], '*', 'body', ARGV[i], 'hash', ARGV[i + 1])
end
redis.call('SET', KEYS[2], ARGV[#ARGV])
redis.call('SET', KEYS[3], ARGV[3])
return {1, id}
`;

/**
 * Trims entries with ids below ARGV[1] and records the new anchor (plain, and sealed), if the trail
 * still starts at ARGV[2] and the first entry kept is ARGV[3] (or, with ARGV[3] empty, none is kept
 * and the head is still ARGV[4]): what the caller checked has not moved meanwhile. KEYS: stream,
 * anchor, sealed anchor, head. ARGV[5], ARGV[6]: the plain and the sealed anchor. Returns -1 if it
 * moved, else how many entries were removed.
 */
const TRIM = `
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if not oldest or oldest[1] ~= ARGV[2] then return -1 end
local kept = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', 1)[1]
if ARGV[3] == '' then
  if kept or (redis.call('GET', KEYS[4]) or '') ~= ARGV[4] then return -1 end
elseif not kept or kept[1] ~= ARGV[3] then
  return -1
end
local before = redis.call('XLEN', KEYS[1])
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
redis.call('SET', KEYS[2], ARGV[5])
redis.call('SET', KEYS[3], ARGV[6])
return before - redis.call('XLEN', KEYS[1])
`;

/** Entries read per round trip when walking a trail. */
const BATCH = 1000;

type Row = [id: string, fields: string[]];

/** The sealed head: the last sequenced entry, MAC'd with the tenant. */
interface SealedHead {
  seq: number;
  hash: string;
}

/** The sealed anchor: the sequence number the first kept entry carries, and the hash it follows. */
interface SealedAnchor {
  seq: number;
  prev: string;
}

/** Where a replica expects a tenant's trail to end. */
interface Head {
  /** The plain head: hash of the last entry ('' for none). */
  plain: string;
  /** The sealed head as stored ('' for none). */
  sealed: string;
  /** The last sequence number (0 for none, or when the sealed head is not valid). */
  seq: number;
}

/** A walk along a trail, oldest entry first. */
interface Walk {
  /** The hash the next entry must follow. */
  prev: string;
  /** The sequence number the next sequenced entry must carry. */
  nextSeq: number;
  entries: number;
  unsequenced: number;
  /** Unsequenced entries since the last sequenced one (or since the start). */
  trailing: number;
  firstSeq?: number;
  lastSeq?: number;
  /** Id of the last entry read ('-' before the first). */
  cursor: string;
  /** Whether a sealed anchor was found. */
  anchored: boolean;
}

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  redis: Redis;
  keys: RedisKeys;
  replicaId: string;
  /**
   * HMAC key of the chain and of its sealed head and anchor; empty: plain SHA-256, which detects
   * accidental damage, not a rewrite by someone with write access to Redis.
   */
  secret: string;
  logger: Logger;
}

/**
 * The audit trail: one Redis Stream per tenant, each entry chained to the previous one by a keyed
 * hash and numbered, so a changed, removed or reordered entry breaks the chain (`verify`). Both ends
 * are sealed with the key: the sealed head names the last entry's number and hash, and after
 * retention trimming the sealed anchor names the first kept entry's number and the hash it follows,
 * so cutting entries off either end is detected too, unless the one cutting holds the secret.
 * Appends are queued per tenant and written in batches by one atomic script, so the request path
 * never waits for them; if another replica appended meanwhile, the batch is chained again on the
 * new head and retried. A failed write is counted (`failures`) and logged, never thrown into a request.
 */
export class AuditLog {
  /** Entries that could not be written. */
  failures = 0;
  private lastFailureAt = 0;
  private readonly queues = new Map<string, { events: { event: AuditEvent; ts: number }[]; flushing: boolean }>();
  private readonly heads = new Map<string, Head>();
  private readonly key: Buffer | undefined;

  constructor(private readonly options: AuditLogOptions) {
    this.key = options.secret === '' ? undefined : Buffer.from(options.secret, 'utf8');
  }

  /** Records an event for a tenant. Returns at once; the write happens in the background. */
  record(tenant: string, event: AuditEvent): void {
    let queue = this.queues.get(tenant);
    if (!queue) {
      queue = { events: [], flushing: false };
      this.queues.set(tenant, queue);
    }
    queue.events.push({ event: { ...event, replica: this.options.replicaId }, ts: Date.now() });
    if (!queue.flushing) void this.flush(tenant);
  }

  /** Resolves once everything recorded so far has been written (or has failed). */
  async drain(): Promise<void> {
    for (let i = 0; i < 200 && [...this.queues.values()].some((q) => q.flushing || q.events.length > 0); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Entries of a tenant, oldest first, between two stream ids or times (inclusive). */
  async read(tenant: string, from = '-', to = '+', count = 10_000): Promise<AuditEntry[]> {
    const rows = await this.options.redis.xrange(this.options.keys.audit(tenant), from, to, 'COUNT', count);
    return rows.map(([id, fields]) => parseEntry(tenant, id, fields));
  }

  /** The last `count` entries of a tenant, oldest first. */
  async tail(tenant: string, count: number): Promise<AuditEntry[]> {
    const rows = await this.options.redis.xrevrange(this.options.keys.audit(tenant), '+', '-', 'COUNT', count);
    return rows.reverse().map(([id, fields]) => parseEntry(tenant, id, fields));
  }

  /**
   * Checks a tenant's whole trail: the chain from its sealed anchor (or its first entry) to its sealed
   * head, sequence numbers without gaps, and both seals' MACs. A break is checked again once from the
   * start, so that an append or a trim running meanwhile cannot make a sound trail look broken.
   */
  async verify(tenant: string): Promise<AuditVerification> {
    const first = await this.check(tenant);
    return first.ok ? first : this.check(tenant);
  }

  /**
   * Removes a tenant's entries older than `before` (epoch ms), keeping the rest verifiable: the
   * number and the previous hash of the first kept entry become the chain's sealed anchor, in the same
   * script. The entries removed are checked first (from the current anchor to the first kept entry);
   * if they do not verify, nothing is removed, so that retention never hides a removal or a change.
   * @returns how many entries were removed.
   */
  async trim(tenant: string, before: number): Promise<number> {
    const { redis, keys } = this.options;
    for (let attempt = 0; attempt < 5; attempt++) {
      const begun = await this.begin(tenant);
      if ('broken' in begun) return this.refuseTrim(tenant, begun.broken);
      const { walk } = begun;
      let rows = begun.rows;
      const oldest = rows[0];
      if (!oldest || streamMs(oldest[0]) >= before) return 0;
      let kept: Row | undefined;
      walking: for (;;) {
        for (const row of rows) {
          if (row[0] === walk.cursor) continue;
          if (streamMs(row[0]) >= before) {
            kept = row;
            break walking;
          }
          const reason = this.step(walk, row);
          if (reason) return this.refuseTrim(tenant, { id: row[0], reason });
        }
        if (rows.length < BATCH) break;
        rows = (await redis.xrange(keys.audit(tenant), walk.cursor, '+', 'COUNT', BATCH)) as Row[];
      }
      if (kept) {
        const reason = this.step({ ...walk }, kept);
        if (reason) return this.refuseTrim(tenant, { id: kept[0], reason });
      }
      const anchor: SealedAnchor = { seq: walk.nextSeq, prev: walk.prev };
      const removed = Number(
        await redis.eval(
          TRIM,
          4,
          keys.audit(tenant),
          keys.auditAnchor(tenant),
          keys.auditSealedAnchor(tenant),
          keys.auditHead(tenant),
          String(before),
          oldest[0],
          kept?.[0] ?? '',
          walk.prev,
          anchor.prev,
          JSON.stringify({ ...anchor, mac: this.mac('anchor', tenant, anchor.seq, anchor.prev) }),
        ),
      );
      if (removed >= 0) return removed;
      // Another replica trimmed or appended meanwhile: look again.
    }
    return 0;
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
    const head = sealed === null ? undefined : this.openHead(tenant, sealed);
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
    return this.options.redis.status === 'ready' && Date.now() - this.lastFailureAt > 5000;
  }

  /** Tenants that have an audit trail. */
  async tenants(): Promise<string[]> {
    return (await this.options.redis.smembers(this.options.keys.auditTenants())).sort();
  }

  private async check(tenant: string): Promise<AuditVerification> {
    const { redis, keys } = this.options;
    const keyed = this.key !== undefined;
    const begun = await this.begin(tenant);
    if ('broken' in begun) return { tenant, ok: false, entries: 0, keyed, broken: begun.broken };
    const { walk } = begun;
    const result = (broken?: { id: string; reason: string }): AuditVerification => ({
      tenant,
      ok: broken === undefined,
      entries: walk.entries,
      ...(walk.firstSeq === undefined ? {} : { firstSeq: walk.firstSeq, lastSeq: walk.lastSeq }),
      ...(walk.unsequenced > 0 ? { unsequenced: walk.unsequenced } : {}),
      keyed,
      ...(broken ? { broken } : {}),
    });
    let rows = begun.rows;
    for (let round = 0; ; round++) {
      for (;;) {
        for (const row of rows) {
          if (row[0] === walk.cursor) continue;
          const reason = this.step(walk, row);
          if (reason) return result({ id: row[0], reason });
        }
        if (rows.length < BATCH) break;
        rows = (await redis.xrange(keys.audit(tenant), walk.cursor, '+', 'COUNT', BATCH)) as Row[];
      }
      // The head is read after the entries, so it may have moved on meanwhile: catch up a few times.
      const [plain = null, sealed = null] = await redis.mget(keys.auditHead(tenant), keys.auditSealedHead(tenant));
      const head = sealed === null ? undefined : this.openHead(tenant, sealed);
      const last = walk.nextSeq - 1;
      if (head && head.seq > last && round < 3) {
        rows = (await redis.xrange(keys.audit(tenant), walk.cursor, '+', 'COUNT', BATCH)) as Row[];
        if (rows.some((row) => row[0] !== walk.cursor)) continue;
      }
      if (sealed !== null && !head) {
        return result({ id: 'end', reason: 'the sealed head is not valid (rewritten without the audit secret)' });
      }
      if (!head) {
        if (walk.lastSeq !== undefined || walk.anchored) {
          return result({ id: 'end', reason: 'the sealed head is missing (removed)' });
        }
        if (walk.entries > 0) {
          return result({
            id: 'end',
            reason:
              'the trail is not sealed (written by a version before sealed heads); a replica of this version seals it when it starts',
          });
        }
      } else if (head.seq > last) {
        return result({
          id: 'end',
          reason: `the trail ends at sequence number ${last} but its sealed head is ${head.seq}: ${head.seq - last} entries removed at the end`,
        });
      } else if (head.seq < last) {
        return result({
          id: 'end',
          reason: `the trail goes on past its sealed head (${head.seq}) to sequence number ${last}`,
        });
      } else if (walk.lastSeq !== undefined && walk.trailing === 0 && walk.prev !== head.hash) {
        return result({ id: 'end', reason: 'the last entry is not the one the sealed head names' });
      } else if (walk.trailing > 0) {
        return result({
          id: 'end',
          reason: `the last ${walk.trailing} entries follow the sealed head without sequence numbers (written by a replica of an earlier version); the next entry a replica of this version writes seals them`,
        });
      }
      if ((plain ?? '') !== walk.prev) {
        return result({
          id: 'end',
          reason: 'the chain does not end at the recorded head (entries removed at the end)',
        });
      }
      return result();
    }
  }

  /**
   * Where a tenant's trail starts, read with its first entries in one transaction (so a trim cannot
   * fall between them): the sealed anchor, else the first entry of an untrimmed trail. Replicas of
   * earlier versions trimmed without sealing; the entries they left first (unsequenced) may start at
   * their plain anchor.
   */
  private async begin(
    tenant: string,
  ): Promise<{ walk: Walk; rows: Row[] } | { broken: { id: string; reason: string } }> {
    const { redis, keys } = this.options;
    const replies = await redis
      .multi()
      .mget(keys.auditSealedAnchor(tenant), keys.auditAnchor(tenant))
      .xrange(keys.audit(tenant), '-', '+', 'COUNT', BATCH)
      .exec();
    if (!replies) throw new Error('the audit transaction was aborted');
    for (const [error] of replies) if (error) throw error;
    const [sealed, plain] = replies[0]![1] as (string | null)[];
    const rows = replies[1]![1] as Row[];
    const walk: Walk = { prev: '', nextSeq: 1, entries: 0, unsequenced: 0, trailing: 0, cursor: '-', anchored: false };
    if (sealed !== null && sealed !== undefined) {
      const anchor = this.openAnchor(tenant, sealed);
      if (!anchor) {
        return {
          broken: { id: 'start', reason: 'the sealed anchor is not valid (rewritten without the audit secret)' },
        };
      }
      walk.prev = anchor.prev;
      walk.nextSeq = anchor.seq;
      walk.anchored = true;
    }
    const first = rows[0];
    if (first) {
      const body = bodyOf(first);
      if (body?.prev !== walk.prev) {
        if (body && body.seq === undefined && typeof body.prev === 'string' && body.prev === plain) {
          walk.prev = body.prev;
        } else {
          return {
            broken: {
              id: first[0],
              reason: walk.anchored
                ? `the trail does not start where its sealed anchor says (sequence number ${walk.nextSeq}): entries removed at the start`
                : 'the trail does not start with its first entry and has no sealed anchor: entries removed at the start',
            },
          };
        }
      }
    }
    return { walk, rows };
  }

  /** Takes one entry along a walk. @returns why it breaks the chain, if it does. */
  private step(walk: Walk, [id, fields]: Row): string | undefined {
    walk.entries += 1;
    const body = field(fields, 'body');
    const parsed = bodyOf([id, fields]);
    if (!parsed) return 'the entry is not valid JSON';
    if (parsed.prev !== walk.prev) return 'it does not follow the entry before it (removed or reordered entries)';
    if (!same(this.chain(walk.prev, body), field(fields, 'hash'))) {
      return 'its content does not match its hash (changed entry)';
    }
    if (parsed.seq === undefined) {
      walk.unsequenced += 1;
      walk.trailing += 1;
    } else {
      if (parsed.seq !== walk.nextSeq) {
        return typeof parsed.seq === 'number' && parsed.seq > walk.nextSeq
          ? `it has sequence number ${parsed.seq} where ${walk.nextSeq} was expected: ${parsed.seq - walk.nextSeq} entries missing before it`
          : `it has sequence number ${String(parsed.seq)} where ${walk.nextSeq} was expected`;
      }
      walk.firstSeq ??= parsed.seq;
      walk.lastSeq = parsed.seq;
      walk.nextSeq = parsed.seq + 1;
      walk.trailing = 0;
    }
    walk.prev = field(fields, 'hash');
    walk.cursor = id;
    return undefined;
  }

  private refuseTrim(tenant: string, broken: { id: string; reason: string }): number {
    this.options.logger.error(
      { tenant, ...broken },
      'audit entries not trimmed: the trail does not verify up to the cut',
    );
    return 0;
  }

  private chain(prev: string, body: string): string {
    return this.key
      ? createHmac('sha256', this.key).update(prev).update('\n').update(body).digest('hex')
      : createHash('sha256').update(prev).update('\n').update(body).digest('hex');
  }

  /** MAC of a sealed head or anchor: bound to its kind, the tenant, the sequence number and the hash. */
  private mac(kind: 'head' | 'anchor', tenant: string, seq: number, hash: string): string {
    const text = `openclaw-audit-${kind}\n${tenant}\n${seq}\n${hash}`;
    return this.key
      ? createHmac('sha256', this.key).update(text).digest('hex')
      : createHash('sha256').update(text).digest('hex');
  }

  private openHead(tenant: string, stored: string): SealedHead | undefined {
    const value = parseJson(stored) as { seq?: unknown; hash?: unknown; mac?: unknown } | undefined;
    if (!value || !Number.isSafeInteger(value.seq) || typeof value.hash !== 'string' || typeof value.mac !== 'string')
      return undefined;
    const head = { seq: value.seq as number, hash: value.hash };
    return same(this.mac('head', tenant, head.seq, head.hash), value.mac) ? head : undefined;
  }

  private openAnchor(tenant: string, stored: string): SealedAnchor | undefined {
    const value = parseJson(stored) as { seq?: unknown; prev?: unknown; mac?: unknown } | undefined;
    if (!value || !Number.isSafeInteger(value.seq) || typeof value.prev !== 'string' || typeof value.mac !== 'string')
      return undefined;
    const anchor = { seq: value.seq as number, prev: value.prev };
    return same(this.mac('anchor', tenant, anchor.seq, anchor.prev), value.mac) ? anchor : undefined;
  }

  /** The head as stored; a sealed head that is not valid counts as none, so numbering starts again (and shows). */
  private headOf(tenant: string, plain: string | null, sealed: string | null): Head {
    const head = sealed === null ? undefined : this.openHead(tenant, sealed);
    if (sealed !== null && !head) {
      this.options.logger.error({ tenant }, 'the sealed audit head is not valid; numbering starts again');
    }
    const known = this.heads.get(tenant);
    const seq = head?.seq ?? 0;
    if (known && seq < known.seq) {
      // Only a copy of an older trail, or a cut at the end, moves the head back.
      this.options.logger.error(
        { tenant, was: known.seq, now: seq },
        'the audit head went back: entries were removed at the end or an older copy of the trail restored',
      );
    }
    return { plain: plain ?? '', sealed: sealed ?? '', seq };
  }

  private async flush(tenant: string): Promise<void> {
    const queue = this.queues.get(tenant)!;
    queue.flushing = true;
    const { redis, keys } = this.options;
    try {
      while (queue.events.length > 0) {
        const batch = queue.events.splice(0, 500);
        let written = false;
        for (let attempt = 0; attempt < 8 && !written; attempt++) {
          if (redis.status !== 'ready') break;
          let head = this.heads.get(tenant);
          if (head === undefined) {
            const stored = await redis.mget(keys.auditHead(tenant), keys.auditSealedHead(tenant)).catch(() => null);
            if (!stored) continue;
            head = this.headOf(tenant, stored[0] ?? null, stored[1] ?? null);
          }
          const args: string[] = [];
          let prev = head.plain;
          let seq = head.seq;
          for (const { event, ts } of batch) {
            seq += 1;
            const body = JSON.stringify({ ts, tenant, seq, prev, ...event });
            const hash = this.chain(prev, body);
            args.push(body, hash);
            prev = hash;
          }
          const sealed = JSON.stringify({ seq, hash: prev, mac: this.mac('head', tenant, seq, prev) });
          const reply = (await redis
            .eval(
              APPEND,
              3,
              keys.audit(tenant),
              keys.auditHead(tenant),
              keys.auditSealedHead(tenant),
              head.plain,
              head.sealed,
              sealed,
              ...args,
            )
            .catch(() => [0, head.plain, head.sealed])) as [number, string, string];
          if (reply[0] === 1) {
            this.heads.set(tenant, { plain: prev, sealed, seq });
            written = true;
            void redis.sadd(keys.auditTenants(), tenant).catch(() => undefined);
          } else {
            // Another replica appended: chain on its head.
            this.heads.set(tenant, this.headOf(tenant, reply[1] || null, reply[2] || null));
          }
        }
        if (!written) {
          this.failures += batch.length;
          this.lastFailureAt = Date.now();
          this.heads.delete(tenant);
          this.options.logger.error({ tenant, lost: batch.length }, 'could not write audit entries');
        }
      }
    } finally {
      queue.flushing = false;
    }
  }
}

function field(fields: string[], name: string): string {
  const i = fields.indexOf(name);
  return i >= 0 && i % 2 === 0 ? (fields[i + 1] ?? '') : '';
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The chain fields of an entry's body, or undefined if it is not a JSON object. */
function bodyOf([, fields]: Row): { prev?: unknown; seq?: unknown } | undefined {
  const value = parseJson(field(fields, 'body'));
  return typeof value === 'object' && value !== null ? (value as { prev?: unknown; seq?: unknown }) : undefined;
}

/** Epoch ms of a stream id. */
function streamMs(id: string): number {
  return Number(id.split('-')[0]);
}

/** Compares two hex digests in constant time. */
function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function parseEntry(tenant: string, id: string, fields: string[]): AuditEntry {
  const hash = field(fields, 'hash');
  try {
    const body = JSON.parse(field(fields, 'body')) as Omit<AuditEntry, 'id' | 'hash'>;
    return { ...body, tenant, id, hash };
  } catch {
    return { id, tenant, ts: 0, prev: '', hash, type: 'unreadable', outcome: 'unreadable' };
  }
}
