import type Redis from 'ioredis';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { AuditChain } from './audit-chain';
import { type AuditEntry, type AuditEvent, parseEntry } from './audit-entry';
import { type AuditVerification, AuditVerifier } from './audit-verifier';
import { AuditWriter } from './audit-writer';

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
 *
 * The keyed hashes are {@link AuditChain}'s; appending is {@link AuditWriter}'s; verifying and
 * trimming walk the trail with {@link AuditVerifier}.
 */
export class AuditLog {
  private readonly chain: AuditChain;
  private readonly writer: AuditWriter;
  private readonly verifier: AuditVerifier;

  constructor(private readonly options: AuditLogOptions) {
    const { redis, keys, replicaId, logger } = options;
    this.chain = new AuditChain(options.secret);
    this.writer = new AuditWriter({ redis, keys, replicaId, chain: this.chain, logger });
    this.verifier = new AuditVerifier({ redis, keys, chain: this.chain, logger });
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
    return (await this.options.redis.smembers(this.options.keys.auditTenants())).sort();
  }
}
