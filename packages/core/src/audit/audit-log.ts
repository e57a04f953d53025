import { createHash, createHmac } from 'node:crypto';
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
  /** Chain hash of the previous entry ('' for the first). */
  prev: string;
  /** This entry's chain hash: HMAC-SHA256(secret, prev + body) (SHA-256 without a secret). */
  hash: string;
}

/** Result of checking a tenant's chain. */
export interface AuditVerification {
  tenant: string;
  ok: boolean;
  entries: number;
  /** The first entry that breaks the chain, and why. */
  broken?: { id: string; reason: string };
}

/**
 * Appends entries whose `prev` equals the stored head, or answers the head. KEYS: stream, head.
 * ARGV: expected head, then (body, hash) pairs. Stream and head share a hash tag (one slot).
 */
const APPEND = `
local head = redis.call('GET', KEYS[2]) or ''
if head ~= ARGV[1] then return {0, head} end
local ids = {}
for i = 2, #ARGV, 2 do
  table.insert(ids, redis.call('XADD', KEYS[1], '*', 'body', ARGV[i], 'hash', ARGV[i + 1]))
end
redis.call('SET', KEYS[2], ARGV[#ARGV])
return {1, ids[#ids]}
`;

/**
 * Trims entries with ids below ARGV[1] and records, as the anchor, the hash the first remaining entry
 * follows. KEYS: stream, anchor.
 */
const TRIM = `
local before = redis.call('XLEN', KEYS[1])
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
local removed = before - redis.call('XLEN', KEYS[1])
if removed > 0 then
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  if first then
    local fields = first[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'body' then redis.call('SET', KEYS[2], cjson.decode(fields[i + 1]).prev) end
    end
  end
end
return removed
`;

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  redis: Redis;
  keys: RedisKeys;
  replicaId: string;
  /** HMAC key of the chain; empty: plain SHA-256 (detects edits, not a rewrite by someone with Redis access). */
  secret: string;
  logger: Logger;
}

/**
 * The audit trail: one Redis Stream per tenant, each entry chained to the previous one by a keyed
 * hash, so a changed, removed or reordered entry breaks the chain (`verify`). Appends are queued per
 * tenant and written in batches by one atomic script, so the request path never waits for them; if
 * another replica appended meanwhile, the batch is chained again on the new head and retried.
 * A failed write is counted (`failures`) and logged, never thrown into a request.
 */
export class AuditLog {
  /** Entries that could not be written. */
  failures = 0;
  private lastFailureAt = 0;
  private readonly queues = new Map<string, { events: { event: AuditEvent; ts: number }[]; flushing: boolean }>();
  private readonly heads = new Map<string, string>();
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

  /** Checks a tenant's whole chain, and that it ends at the stored head. */
  async verify(tenant: string): Promise<AuditVerification> {
    const redis = this.options.redis;
    // After retention trimmed the oldest entries, the chain starts at the recorded anchor.
    let prev = (await redis.get(this.options.keys.auditAnchor(tenant))) ?? '';
    let entries = 0;
    let cursor = '-';
    for (;;) {
      const rows = await redis.xrange(this.options.keys.audit(tenant), cursor, '+', 'COUNT', 1000);
      for (const [id, fields] of rows) {
        if (cursor !== '-' && id === cursor) continue;
        entries += 1;
        const body = field(fields, 'body');
        const hash = field(fields, 'hash');
        let claimedPrev: unknown;
        try {
          claimedPrev = (JSON.parse(body) as { prev?: unknown }).prev;
        } catch {
          return { tenant, ok: false, entries, broken: { id, reason: 'the entry is not valid JSON' } };
        }
        if (claimedPrev !== prev) {
          return {
            tenant,
            ok: false,
            entries,
            broken: { id, reason: 'it does not follow the entry before it (removed or reordered entries)' },
          };
        }
        if (this.chain(prev, body) !== hash) {
          return {
            tenant,
            ok: false,
            entries,
            broken: { id, reason: 'its content does not match its hash (changed entry)' },
          };
        }
        prev = hash;
      }
      if (rows.length < 1000) break;
      cursor = rows[rows.length - 1]![0];
    }
    const head = (await redis.get(this.options.keys.auditHead(tenant))) ?? '';
    if (head !== prev)
      return {
        tenant,
        ok: false,
        entries,
        broken: { id: 'end', reason: 'the chain does not end at the recorded head (entries removed at the end)' },
      };
    return { tenant, ok: true, entries };
  }

  /**
   * Removes a tenant's entries older than `before` (epoch ms), keeping the rest verifiable: the hash
   * the first remaining entry follows becomes the chain's recorded anchor, in the same script.
   * @returns how many entries were removed.
   */
  async trim(tenant: string, before: number): Promise<number> {
    const removed = await this.options.redis.eval(
      TRIM,
      2,
      this.options.keys.audit(tenant),
      this.options.keys.auditAnchor(tenant),
      String(before),
    );
    return Number(removed);
  }

  /** Whether entries are being written: Redis is up, and no write has failed in the last 5 s. */
  healthy(): boolean {
    return this.options.redis.status === 'ready' && Date.now() - this.lastFailureAt > 5000;
  }

  /** Tenants that have an audit trail. */
  async tenants(): Promise<string[]> {
    return (await this.options.redis.smembers(this.options.keys.auditTenants())).sort();
  }

  private chain(prev: string, body: string): string {
    return this.key
      ? createHmac('sha256', this.key).update(prev).update('\n').update(body).digest('hex')
      : createHash('sha256').update(prev).update('\n').update(body).digest('hex');
  }

  private async flush(tenant: string): Promise<void> {
    const queue = this.queues.get(tenant)!;
    queue.flushing = true;
    const redis = this.options.redis;
    try {
      while (queue.events.length > 0) {
        const batch = queue.events.splice(0, 500);
        let written = false;
        for (let attempt = 0; attempt < 8 && !written; attempt++) {
          if (redis.status !== 'ready') break;
          let head = this.heads.get(tenant);
          if (head === undefined) head = (await redis.get(this.options.keys.auditHead(tenant)).catch(() => null)) ?? '';
          const args: string[] = [head];
          let prev = head;
          for (const { event, ts } of batch) {
            const body = JSON.stringify({ ts, tenant, prev, ...event });
            const hash = this.chain(prev, body);
            args.push(body, hash);
            prev = hash;
          }
          const reply = (await redis
            .eval(APPEND, 2, this.options.keys.audit(tenant), this.options.keys.auditHead(tenant), ...args)
            .catch(() => [0, head])) as [number, string];
          if (reply[0] === 1) {
            this.heads.set(tenant, prev);
            written = true;
            void redis.sadd(this.options.keys.auditTenants(), tenant).catch(() => undefined);
          } else {
            this.heads.set(tenant, reply[1]); // Another replica appended: chain on its head.
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

function parseEntry(tenant: string, id: string, fields: string[]): AuditEntry {
  const hash = field(fields, 'hash');
  try {
    const body = JSON.parse(field(fields, 'body')) as Omit<AuditEntry, 'id' | 'hash'>;
    return { ...body, tenant, id, hash };
  } catch {
    return { id, tenant, ts: 0, prev: '', hash, type: 'unreadable', outcome: 'unreadable' };
  }
}
