import { LuaScript } from '../redis/lua-script';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import type { AuditArchive } from './audit-archive';
import type { AuditChain, SealedAnchor } from './audit-chain';
import { bodyOf, field, type StreamRow, streamMs } from './audit-entry';

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
 * Trims entries with ids below ARGV[1] and records the new anchor (plain, and sealed), if the trail
 * still starts at ARGV[2] and the first entry kept is ARGV[3] (or, with ARGV[3] empty, none is kept
 * and the head is still ARGV[4]): what the caller checked has not moved meanwhile. KEYS: stream,
 * anchor, sealed anchor, head. ARGV[5], ARGV[6]: the plain and the sealed anchor. Returns -1 if it
 * moved, else how many entries were removed.
 */
const TRIM = new LuaScript(
  'audit-trim',
  4,
  `
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
`,
);

/** Entries read per round trip when walking a trail. */
const BATCH = 1000;

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
  /**
   * Set when the walk came through the archive: Redis entries numbered before `nextSeq` are in the
   * archive too (moved, and not yet removed from Redis) and are passed over.
   */
  archived?: boolean;
}

/** Options of {@link AuditVerifier}. */
export interface AuditVerifierOptions {
  redis: RedisClient;
  keys: RedisKeys;
  chain: AuditChain;
  logger: Logger;
  /** Where entries older than Redis's recent window are kept, when they are moved out of Redis. */
  archive?: AuditArchive;
}

/** Entries moved to the archive per round trip of {@link AuditVerifier.archive}. */
const ARCHIVE_BATCH = 5_000;

/**
 * Walks a tenant's audit trail from its start (the sealed anchor, or the first entry) to its end (the
 * sealed head), checking each entry's chain hash and sequence number and both seals' MACs: to verify
 * the whole trail, or the part that retention trimming is about to remove.
 */
export class AuditVerifier {
  constructor(private readonly options: AuditVerifierOptions) {}

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
    return (await this.cut(tenant, before)).removed;
  }

  /**
   * Moves a tenant's entries older than `before` (epoch ms) from Redis to the archive: checked like
   * {@link AuditVerifier.trim}'s, appended to the archive and synced, then removed from Redis with
   * the sealed anchor moved past them, in rounds of {@link ARCHIVE_BATCH}, until none is left or the
   * time `until` has passed. The caller makes sure one process does it at a time.
   * @returns how many entries were moved.
   */
  async archive(tenant: string, before: number, until = Number.POSITIVE_INFINITY): Promise<number> {
    let moved = 0;
    for (;;) {
      const { removed, more } = await this.cut(tenant, before, this.options.archive);
      moved += removed;
      // A long backlog is moved over several rounds, each within the caller's lock.
      if (!more || Date.now() >= until) return moved;
    }
  }

  /** Removes entries older than `before` from Redis, after appending them to `archive` if given. */
  private async cut(
    tenant: string,
    before: number,
    archive?: AuditArchive,
  ): Promise<{ removed: number; more: boolean }> {
    const { redis, keys } = this.options;
    const refuse = (broken: { id: string; reason: string }) => ({
      removed: this.refuseTrim(tenant, broken),
      more: false,
    });
    let end = archive ? await archive.end(tenant, true) : undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      const begun = await this.begin(tenant);
      if ('broken' in begun) return refuse(begun.broken);
      if (!('walk' in begun)) break;
      const { walk } = begun;
      let rows = begun.rows;
      const oldest = rows[0];
      if (!oldest || streamMs(oldest[0]) >= before) return { removed: 0, more: false };
      if (archive && end === undefined && walk.anchored && (await archive.anchor(tenant)) === undefined) {
        // Redis was trimmed before archiving began: the archive starts where Redis's trail does.
        await archive.setAnchor(tenant, { seq: walk.nextSeq, prev: walk.prev });
      } else if (end && walk.nextSeq > end.seq + 1) {
        return refuse({
          id: 'start',
          reason: `the trail in Redis starts at sequence number ${walk.nextSeq} but the archive ends at ${end.seq}: entries were removed from Redis without being archived (by a process without OPENCLAW_AUDIT_ARCHIVE_DIR?)`,
        });
      }
      const moving: StreamRow[] = [];
      let kept: StreamRow | undefined;
      walking: for (;;) {
        for (const row of rows) {
          if (row[0] === walk.cursor) continue;
          if (streamMs(row[0]) >= before || (archive && moving.length >= ARCHIVE_BATCH)) {
            kept = row;
            break walking;
          }
          const reason = this.step(walk, row);
          if (reason) return refuse({ id: row[0], reason });
          if (!archive) continue;
          if (walk.trailing > 0) {
            return refuse({
              id: row[0],
              reason: 'entries without sequence numbers (written by an earlier version) are not archived',
            });
          }
          if (end && walk.lastSeq! <= end.seq) {
            // Moved by a run that stopped before it removed them from Redis.
            if (walk.lastSeq === end.seq && walk.prev !== end.hash) {
              return refuse({ id: row[0], reason: 'the entry differs from the archived entry of the same number' });
            }
            continue;
          }
          moving.push(row);
        }
        if (rows.length < BATCH) break;
        rows = (await redis.xrange(keys.audit(tenant), walk.cursor, '+', 'COUNT', BATCH)) as StreamRow[];
      }
      if (kept) {
        const reason = this.step({ ...walk }, kept);
        if (reason) return refuse({ id: kept[0], reason });
      }
      if (archive && moving.length > 0) {
        await archive.append(tenant, moving);
        end = { seq: walk.lastSeq!, hash: walk.prev, id: walk.cursor };
      }
      const anchor: SealedAnchor = { seq: walk.nextSeq, prev: walk.prev };
      const removed = Number(
        await TRIM.run(
          redis,
          keys.audit(tenant),
          keys.auditAnchor(tenant),
          keys.auditSealedAnchor(tenant),
          keys.auditHead(tenant),
          kept ? kept[0] : nextId(walk.cursor),
          oldest[0],
          kept?.[0] ?? '',
          walk.prev,
          anchor.prev,
          this.options.chain.sealAnchor(tenant, anchor),
        ),
      );
      if (removed >= 0) return { removed, more: kept !== undefined && streamMs(kept[0]) < before };
      // Another replica trimmed or appended meanwhile: look again.
    }
    return { removed: 0, more: false };
  }
  private async check(tenant: string): Promise<AuditVerification> {
    const { redis, keys } = this.options;
    const keyed = this.options.chain.keyed;
    const begun = await this.beginAcross(tenant);
    if ('broken' in begun) return { tenant, ok: false, entries: begun.entries, keyed, broken: begun.broken };
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
        rows = (await redis.xrange(keys.audit(tenant), walk.cursor, '+', 'COUNT', BATCH)) as StreamRow[];
      }
      // The head is read after the entries, so it may have moved on meanwhile: catch up a few times.
      const [plain = null, sealed = null] = await redis.mget(keys.auditHead(tenant), keys.auditSealedHead(tenant));
      const head = sealed === null ? undefined : this.options.chain.openHead(tenant, sealed);
      const last = walk.nextSeq - 1;
      if (head && head.seq > last && round < 3) {
        rows = (await redis.xrange(keys.audit(tenant), walk.cursor, '+', 'COUNT', BATCH)) as StreamRow[];
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
   * Where the Redis part of a tenant's trail starts when the archive holds the part before it: the
   * archive walked from its start (its sealed anchor, or the first entry), then Redis's part joined
   * on where the archive ends. Entries moved meanwhile are read from the archive as it grows.
   */
  private async beginAcross(
    tenant: string,
  ): Promise<{ walk: Walk; rows: StreamRow[] } | { broken: { id: string; reason: string }; entries: number }> {
    const archive = this.options.archive;
    if (!archive) {
      const begun = await this.begin(tenant);
      if ('broken' in begun) return { ...begun, entries: 0 };
      if ('behind' in begun) throw new Error('unreachable: only a walk through the archive can be behind');
      return begun;
    }
    const walk: Walk = { prev: '', nextSeq: 1, entries: 0, unsequenced: 0, trailing: 0, cursor: '-', anchored: false };
    const anchor = await archive.anchor(tenant);
    if (anchor === 'invalid') {
      const reason = "the archive's sealed anchor is not valid (rewritten without the audit secret)";
      return { broken: { id: 'start', reason }, entries: 0 };
    }
    if (anchor) Object.assign(walk, { prev: anchor.prev, nextSeq: anchor.seq, anchored: true });
    for (let round = 0; ; round++) {
      for await (const row of archive.rows(tenant, walk.nextSeq - 1)) {
        const first = walk.entries === 0;
        const reason = this.step(walk, row);
        if (reason === undefined) continue;
        const start = first && bodyOf(row)?.prev !== walk.prev;
        return {
          broken: {
            id: row[0],
            reason: start
              ? walk.anchored
                ? `the archive does not start where its sealed anchor says (sequence number ${walk.nextSeq}): entries removed at the start`
                : 'the archive does not start with the first entry and has no sealed anchor: entries removed at the start'
              : reason,
          },
          entries: walk.entries,
        };
      }
      walk.archived = walk.anchored || walk.entries > 0;
      const begun = await this.begin(tenant, walk);
      if ('broken' in begun) return { ...begun, entries: walk.entries };
      if (!('behind' in begun)) return begun;
      // Entries were moved to the archive after it was read: read on.
      if (round >= 3) {
        return {
          broken: {
            id: 'start',
            reason: `entries ${walk.nextSeq} to ${begun.behind - 1} are neither in the archive nor in Redis: removed between the two`,
          },
          entries: walk.entries,
        };
      }
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
    archived?: Walk,
  ): Promise<{ walk: Walk; rows: StreamRow[] } | { broken: { id: string; reason: string } } | { behind: number }> {
    const { redis, keys } = this.options;
    const replies = await redis
      .multi()
      .mget(keys.auditSealedAnchor(tenant), keys.auditAnchor(tenant))
      .xrange(keys.audit(tenant), '-', '+', 'COUNT', BATCH)
      .exec();
    if (!replies) throw new Error('the audit transaction was aborted');
    for (const [error] of replies) if (error) throw error;
    const [sealed, plain] = replies[0]![1] as (string | null)[];
    const rows = replies[1]![1] as StreamRow[];
    if (archived?.archived) return this.join(tenant, archived, sealed ?? null, rows);
    const walk: Walk = { prev: '', nextSeq: 1, entries: 0, unsequenced: 0, trailing: 0, cursor: '-', anchored: false };
    if (sealed !== null && sealed !== undefined) {
      const anchor = this.options.chain.openAnchor(tenant, sealed);
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

  /**
   * Joins Redis's part of a trail onto a walk through the archive: Redis's sealed anchor names where
   * the archive ends (or an earlier entry, while moved entries are still in Redis too). An anchor
   * past the archive's end means the archive has grown since it was read (`behind`), or entries are
   * missing.
   */
  private join(
    tenant: string,
    walk: Walk,
    sealed: string | null,
    rows: StreamRow[],
  ): { walk: Walk; rows: StreamRow[] } | { broken: { id: string; reason: string } } | { behind: number } {
    const ends = `the archive ends at sequence number ${walk.nextSeq - 1}`;
    if (sealed === null) {
      if (rows.length === 0) return { walk, rows };
      return { broken: { id: 'start', reason: `${ends} but the trail in Redis has no sealed anchor` } };
    }
    const anchor = this.options.chain.openAnchor(tenant, sealed);
    if (!anchor) {
      return { broken: { id: 'start', reason: 'the sealed anchor is not valid (rewritten without the audit secret)' } };
    }
    if (anchor.seq > walk.nextSeq) return { behind: anchor.seq };
    if (anchor.seq === walk.nextSeq && anchor.prev !== walk.prev) {
      return {
        broken: { id: 'start', reason: `${ends}, and the trail in Redis does not follow its last entry` },
      };
    }
    return { walk, rows };
  }

  /** Takes one entry along a walk. @returns why it breaks the chain, if it does. */
  private step(walk: Walk, [id, fields]: StreamRow): string | undefined {
    const body = field(fields, 'body');
    const parsed = bodyOf([id, fields]);
    if (walk.archived && typeof parsed?.seq === 'number' && parsed.seq < walk.nextSeq) {
      walk.cursor = id;
      return undefined;
    }
    walk.entries += 1;
    if (!parsed) return 'the entry is not valid JSON';
    if (parsed.prev !== walk.prev) return 'it does not follow the entry before it (removed or reordered entries)';
    if (!this.options.chain.follows(walk.prev, body, field(fields, 'hash'))) {
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
}

/** The stream id right after `id` (`<ms>-<seq + 1>`): a MINID that removes `id` and everything before it. */
function nextId(id: string): string {
  const [ms, seq] = id.split('-');
  return `${ms}-${Number(seq ?? 0) + 1}`;
}
