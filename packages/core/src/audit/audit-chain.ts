import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { parseJson } from './audit-entry';

/** The sealed head: the last sequenced entry, MAC'd with the tenant. */
export interface SealedHead {
  seq: number;
  hash: string;
}

/** The sealed anchor: the sequence number the first kept entry carries, and the hash it follows. */
export interface SealedAnchor {
  seq: number;
  prev: string;
}

/**
 * The keyed hashes of the audit trail: each entry's chain hash, and the MACs that seal a trail's
 * head and anchor, all keyed by `OPENCLAW_AUDIT_SECRET` (plain SHA-256 without one, which detects
 * accidental damage, not a rewrite by someone with write access to Redis).
 */
export class AuditChain {
  private readonly key: Buffer | undefined;

  /** @param secret the HMAC key; empty for plain SHA-256. */
  constructor(secret: string) {
    this.key = secret === '' ? undefined : Buffer.from(secret, 'utf8');
  }

  /** Whether the hashes are keyed by a secret. */
  get keyed(): boolean {
    return this.key !== undefined;
  }

  /** An entry's chain hash: HMAC-SHA256(secret, prev + '\n' + body) (SHA-256 without a secret). */
  hash(prev: string, body: string): string {
    return this.key
      ? createHmac('sha256', this.key).update(prev).update('\n').update(body).digest('hex')
      : createHash('sha256').update(prev).update('\n').update(body).digest('hex');
  }

  /** Whether a stored hash is the chain hash of an entry's body after `prev` (in constant time). */
  follows(prev: string, body: string, stored: string): boolean {
    return same(this.hash(prev, body), stored);
  }

  /** A sealed head as stored: the last entry's number and hash, with their MAC. */
  sealHead(tenant: string, seq: number, hash: string): string {
    return JSON.stringify({ seq, hash, mac: this.mac('head', tenant, seq, hash) });
  }

  /** A sealed anchor as stored: the first kept entry's number and the hash it follows, with their MAC. */
  sealAnchor(tenant: string, anchor: SealedAnchor): string {
    return JSON.stringify({ ...anchor, mac: this.mac('anchor', tenant, anchor.seq, anchor.prev) });
  }

  /** A stored sealed head, if its MAC holds. */
  openHead(tenant: string, stored: string): SealedHead | undefined {
    const value = parseJson(stored) as { seq?: unknown; hash?: unknown; mac?: unknown } | undefined;
    if (!value || !Number.isSafeInteger(value.seq) || typeof value.hash !== 'string' || typeof value.mac !== 'string')
      return undefined;
    const head = { seq: value.seq as number, hash: value.hash };
    return same(this.mac('head', tenant, head.seq, head.hash), value.mac) ? head : undefined;
  }

  /** A stored sealed anchor, if its MAC holds. */
  openAnchor(tenant: string, stored: string): SealedAnchor | undefined {
    const value = parseJson(stored) as { seq?: unknown; prev?: unknown; mac?: unknown } | undefined;
    if (!value || !Number.isSafeInteger(value.seq) || typeof value.prev !== 'string' || typeof value.mac !== 'string')
      return undefined;
    const anchor = { seq: value.seq as number, prev: value.prev };
    return same(this.mac('anchor', tenant, anchor.seq, anchor.prev), value.mac) ? anchor : undefined;
  }

  /** MAC of a sealed head or anchor: bound to its kind, the tenant, the sequence number and the hash. */
  private mac(kind: 'head' | 'anchor', tenant: string, seq: number, hash: string): string {
    const text = `openclaw-audit-${kind}\n${tenant}\n${seq}\n${hash}`;
    return this.key
      ? createHmac('sha256', this.key).update(text).digest('hex')
      : createHash('sha256').update(text).digest('hex');
  }
}

/** Compares two hex digests in constant time. */
function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
