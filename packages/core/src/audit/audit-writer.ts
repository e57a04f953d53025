import { LuaScript } from '../redis/lua-script';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import type { AuditChain } from './audit-chain';
import type { AuditEvent } from './audit-entry';

/**
 * Appends entries when the stored head and sealed head are those expected, or answers both. KEYS:
 * stream, head, sealed head. ARGV: expected head, expected sealed head, new sealed head, then (body,
 * hash) pairs. The keys share a hash tag (one slot). The plain head is what replicas of earlier
 * versions compare, so that their entries still join the one chain during a rolling update.
 */
const APPEND = new LuaScript(
  'audit-append',
  3,
  `
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
`,
);

/**
 * How long an entry may wait for others to join its batch. Entries are written on a clean shutdown
 * ({@link AuditWriter.drain}); a crash loses at most this much of the trail beyond what was in flight.
 */
export const AUDIT_BATCH_MS = 10;

/** How often a process adds a tenant it writes for to the set of tenants with a trail again. */
const TENANT_READD_MS = 60_000;

/** Where a replica expects a tenant's trail to end. */
interface Head {
  /** The plain head: hash of the last entry ('' for none). */
  plain: string;
  /** The sealed head as stored ('' for none). */
  sealed: string;
  /** The last sequence number (0 for none, or when the sealed head is not valid). */
  seq: number;
}

/** Options of {@link AuditWriter}. */
export interface AuditWriterOptions {
  redis: RedisClient;
  keys: RedisKeys;
  /** Named in every entry this writer records. */
  replicaId: string;
  chain: AuditChain;
  logger: Logger;
}

/**
 * Appends audit entries: queued per tenant for up to {@link AUDIT_BATCH_MS}, then chained, numbered
 * and sealed in batches written by one atomic script, so the request path never waits for them. If another replica appended
 * meanwhile, the batch is chained again on the new head and retried. A failed write is counted
 * (`failures`) and logged, never thrown into a request.
 */
export class AuditWriter {
  private lost = 0;
  private lastFailureAt = 0;
  private readonly queues = new Map<
    string,
    { events: { event: AuditEvent; ts: number }[]; flushing: boolean; timer?: NodeJS.Timeout }
  >();
  /** When this process last added each tenant to the set of tenants with a trail. */
  private readonly tenantsAdded = new Map<string, number>();
  private readonly heads = new Map<string, Head>();

  constructor(private readonly options: AuditWriterOptions) {}

  /** Entries that could not be written. */
  get failures(): number {
    return this.lost;
  }

  /** Records an event for a tenant. Returns at once; the write happens in the background. */
  record(tenant: string, event: AuditEvent): void {
    let queue = this.queues.get(tenant);
    if (!queue) {
      queue = { events: [], flushing: false };
      this.queues.set(tenant, queue);
    }
    queue.events.push({ event: { ...event, replica: this.options.replicaId }, ts: Date.now() });
    if (queue.flushing || queue.timer) return;
    // Entries of the next few milliseconds go in the same batch (one script for all of them).
    const pending = queue;
    pending.timer = setTimeout(() => {
      pending.timer = undefined;
      void this.flush(tenant);
    }, AUDIT_BATCH_MS);
  }

  /** Resolves once everything recorded so far has been written (or has failed). */
  async drain(): Promise<void> {
    for (const [tenant, queue] of this.queues) {
      if (!queue.timer) continue;
      clearTimeout(queue.timer);
      queue.timer = undefined;
      void this.flush(tenant);
    }
    for (let i = 0; i < 200 && [...this.queues.values()].some((q) => q.flushing || q.events.length > 0); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Whether entries are being written: Redis is up, and no write has failed in the last 5 s. */
  healthy(): boolean {
    return this.options.redis.status === 'ready' && Date.now() - this.lastFailureAt > 5000;
  }

  /** The head as stored; a sealed head that is not valid counts as none, so numbering starts again (and shows). */
  private headOf(tenant: string, plain: string | null, sealed: string | null): Head {
    const head = sealed === null ? undefined : this.options.chain.openHead(tenant, sealed);
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
            const hash = this.options.chain.hash(prev, body);
            args.push(body, hash);
            prev = hash;
          }
          const sealed = this.options.chain.sealHead(tenant, seq, prev);
          const reply = (await APPEND.run(
            redis,
            keys.audit(tenant),
            keys.auditHead(tenant),
            keys.auditSealedHead(tenant),
            head.plain,
            head.sealed,
            sealed,
            ...args,
          ).catch(() => [0, head.plain, head.sealed])) as [number, string, string];
          if (reply[0] === 1) {
            this.heads.set(tenant, { plain: prev, sealed, seq });
            written = true;
            if ((this.tenantsAdded.get(tenant) ?? 0) < Date.now() - TENANT_READD_MS) {
              this.tenantsAdded.set(tenant, Date.now());
              void redis.sadd(keys.auditTenants(), tenant).catch(() => this.tenantsAdded.delete(tenant));
            }
          } else {
            // Another replica appended: chain on its head.
            this.heads.set(tenant, this.headOf(tenant, reply[1] || null, reply[2] || null));
          }
        }
        if (!written) {
          this.lost += batch.length;
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
