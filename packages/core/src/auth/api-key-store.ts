import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '@openclaw/protocol';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import { ROLE_NAMES } from './roles';

/** A stored API key, as listed: never the key itself, never its hash. */
export interface ApiKeyInfo {
  /** Public id, part of the key; names the key in lists, logs and principal ids. */
  id: string;
  name: string;
  role: string;
  tenant: string;
  createdAt: number;
  createdBy: string;
  /** Epoch ms, or undefined for a key that does not expire. */
  expiresAt?: number;
  revokedAt?: number;
  status: 'active' | 'expired' | 'revoked';
}

/** What creating a key needs. */
export interface NewApiKey {
  name: string;
  role: string;
  tenant: string;
  createdBy: string;
  expiresAt?: number;
}

/** Prefix of stored API keys: `ock_<id>_<secret>`. */
export const API_KEY_PREFIX = 'ock_';
const KEY_PATTERN = /^ock_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const TENANT_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/**
 * API keys in Redis. A key is `ock_<id>_<secret>`: the id finds the record, and Redis keeps only an
 * HMAC-SHA256 of the whole key under a server secret (OPENCLAW_API_KEY_SECRET), so a copy of Redis
 * does not yield usable keys. The key is shown once, at creation.
 */
export class ApiKeyStore {
  private readonly pepper: Buffer;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    secret: string,
  ) {
    this.pepper = Buffer.from(secret, 'utf8');
  }

  /** Whether a credential has the shape of a stored key (as opposed to a static key or a token). */
  static isStoredKey(credential: string): boolean {
    return credential.startsWith(API_KEY_PREFIX);
  }

  /**
   * Creates a key. @returns the key (shown once) and its record.
   * @throws {GatewayError} `BAD_REQUEST` naming the bad field.
   */
  async create(input: NewApiKey): Promise<{ key: string; info: ApiKeyInfo }> {
    if (!/^[\w .:@-]{1,64}$/.test(input.name)) {
      throw badField('name', '1 to 64 letters, digits, spaces and . _ : @ -');
    }
    if (!ROLE_NAMES.includes(input.role)) throw badField('role', `one of ${ROLE_NAMES.join(', ')}`);
    if (!TENANT_PATTERN.test(input.tenant)) throw badField('tenant', 'matches ^[a-z0-9][a-z0-9._-]{0,62}$');
    if (input.expiresAt !== undefined && !(input.expiresAt > Date.now()))
      throw badField('expiresAt', 'a time in the future');
    const id = randomBytes(6).toString('hex');
    const key = `${API_KEY_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
    const createdAt = Date.now();
    const fields: Record<string, string> = {
      id,
      name: input.name,
      role: input.role,
      tenant: input.tenant,
      digest: this.digest(key),
      createdAt: String(createdAt),
      createdBy: input.createdBy,
    };
    if (input.expiresAt !== undefined) fields.expiresAt = String(input.expiresAt);
    await this.redis.multi().hset(this.keys.apiKey(id), fields).sadd(this.keys.apiKeys(), id).exec();
    return { key, info: toInfo(fields) };
  }

  /**
   * Checks a stored key. @returns its record when the key is valid now.
   * @throws {GatewayError} `UNAUTHENTICATED` saying why (unknown, revoked, expired).
   */
  async verify(credential: string): Promise<ApiKeyInfo> {
    const match = KEY_PATTERN.exec(credential);
    if (!match) throw new GatewayError('UNAUTHENTICATED', 'the API key is not valid');
    const fields = await this.redis.hgetall(this.keys.apiKey(match[1]!));
    const expected = Buffer.from(fields.digest ?? '', 'hex');
    const actual = Buffer.from(this.digest(credential), 'hex');
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
      throw new GatewayError('UNAUTHENTICATED', 'the API key is not valid');
    }
    const info = toInfo(fields);
    if (info.status === 'revoked') throw new GatewayError('UNAUTHENTICATED', 'the API key has been revoked');
    if (info.status === 'expired') throw new GatewayError('UNAUTHENTICATED', 'the API key has expired');
    return info;
  }

  /** Every key, or one tenant's, newest first. */
  async list(tenant?: string): Promise<ApiKeyInfo[]> {
    const ids = await this.redis.smembers(this.keys.apiKeys());
    const records = await Promise.all(ids.map((id) => this.redis.hgetall(this.keys.apiKey(id))));
    return records
      .filter((f) => f.id !== undefined && (tenant === undefined || f.tenant === tenant))
      .map(toInfo)
      .sort((a, b) => b.createdAt - a.createdAt);
  }

  /** The record of a key id, if there is one. */
  async get(id: string): Promise<ApiKeyInfo | undefined> {
    if (!/^[0-9a-f]{12}$/.test(id)) return undefined;
    const fields = await this.redis.hgetall(this.keys.apiKey(id));
    return fields.id === undefined ? undefined : toInfo(fields);
  }

  /**
   * Revokes a key: it stops working at once for new connections, and replicas close its live ones.
   * @throws {GatewayError} `NOT_FOUND` for an unknown id.
   */
  async revoke(id: string): Promise<ApiKeyInfo> {
    const key = this.keys.apiKey(id);
    if (!/^[0-9a-f]{12}$/.test(id) || (await this.redis.exists(key)) === 0) {
      throw new GatewayError('NOT_FOUND', `no API key with id '${id}'`);
    }
    const now = String(Date.now());
    await this.redis.multi().hsetnx(key, 'revokedAt', now).sadd(this.keys.revokedApiKeys(), id).exec();
    return toInfo(await this.redis.hgetall(key));
  }

  /** Which of these key ids are revoked. */
  async revokedAmong(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const flags = await this.redis.smismember(this.keys.revokedApiKeys(), ...ids);
    return new Set(ids.filter((_, i) => flags[i] === 1));
  }

  private digest(key: string): string {
    return createHmac('sha256', this.pepper).update(key, 'utf8').digest('hex');
  }
}

function toInfo(f: Record<string, string>): ApiKeyInfo {
  const info: ApiKeyInfo = {
    id: f.id ?? '',
    name: f.name ?? '',
    role: f.role ?? '',
    tenant: f.tenant ?? '',
    createdAt: Number(f.createdAt),
    createdBy: f.createdBy ?? '',
    status: 'active',
  };
  if (f.expiresAt) info.expiresAt = Number(f.expiresAt);
  if (f.revokedAt) info.revokedAt = Number(f.revokedAt);
  info.status =
    info.revokedAt !== undefined
      ? 'revoked'
      : info.expiresAt !== undefined && info.expiresAt <= Date.now()
        ? 'expired'
        : 'active';
  return info;
}

function badField(field: string, expected: string): GatewayError {
  return new GatewayError('BAD_REQUEST', `${field}: expected ${expected}`, {
    details: [{ field, message: `expected ${expected}` }],
  });
}
