import { GatewayError, type NamespaceSummary, type StateEntry, type StateListItem } from '@openclaw/protocol';
import { LuaScript } from '../redis/lua-script';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';

/** Options of {@link StateStore}. */
export interface StateStoreOptions {
  redis: RedisClient;
  keys: RedisKeys;
  logger: Logger;
  /** Largest value, in UTF-8 bytes of its JSON. Default 256 KiB. */
  maxValueBytes?: number;
  /** This process's id (which process sweeps expired keys in a round). */
  processId: string;
  /** How often expired keys are looked for (their `expire` events). Default 1000 ms. */
  sweepMs?: number;
}

/** Redis time in ms, in a script. */
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Writes a key. KEYS: value, index, expiry, expiry versions. ARGV: key, value JSON, ifVersion ('' for
 * none), updatedAt, ttlMs ('' for none), channel, namespace, expiresAt (as reported). Returns {1, version, expires (Redis ms)
 * or 0, 1 when the key is the namespace's only one} or {0, current version} when `ifVersion` is not current.
 */
const SET = new LuaScript(
  'state-set',
  4,
  `
local cur = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= cur then return {0, cur} end
local ver = cur + 1
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'ver', ver, 'at', ARGV[4])
local expires = 0
if ARGV[5] ~= '' then
  ${NOW_MS}
  expires = now + tonumber(ARGV[5])
  redis.call('HSET', KEYS[1], 'exp', ARGV[8])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('ZADD', KEYS[3], expires, ARGV[1])
  redis.call('HSET', KEYS[4], ARGV[1], ver)
else
  redis.call('HDEL', KEYS[1], 'exp')
  redis.call('PERSIST', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
end
local only = 0
if redis.call('ZADD', KEYS[2], 0, ARGV[1]) == 1 and redis.call('ZCARD', KEYS[2]) == 1 then only = 1 end
redis.call('PUBLISH', ARGV[6], cjson.encode({namespace = ARGV[7], key = ARGV[1], version = ver, op = 'set'}))
return {1, ver, expires, only}
`,
);

/**
 * Deletes a key. KEYS: value, index, expiry, expiry versions. ARGV: key, ifVersion ('' for none),
 * channel, namespace. Returns {1, deleted version or 0} or {0, current version}.
 */
const DELETE = new LuaScript(
  'state-delete',
  4,
  `
local cur = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= cur then return {0, cur} end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if cur == 0 then return {1, 0} end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[3], cjson.encode({namespace = ARGV[4], key = ARGV[1], version = cur, op = 'delete'}))
return {1, cur}
`,
);

/**
 * Ends the keys of a namespace whose time is up (Redis has removed their values already): takes them
 * out of the index and publishes their `expire` events. KEYS: expiry, index, expiry versions. ARGV:
 * channel, namespace. Returns the soonest expiry left (Redis ms), or false.
 */
const SWEEP = new LuaScript(
  'state-sweep',
  3,
  `
${NOW_MS}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)
for _, key in ipairs(due) do
  local ver = tonumber(redis.call('HGET', KEYS[3], key) or '0')
  redis.call('ZREM', KEYS[1], key)
  redis.call('ZREM', KEYS[2], key)
  redis.call('HDEL', KEYS[3], key)
  redis.call('PUBLISH', ARGV[1], cjson.encode({namespace = ARGV[2], key = key, version = ver, op = 'expire'}))
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if nxt[2] then return nxt[2] end
return false
`,
);

/**
 * Keeps a namespace's soonest expiry in the list of namespaces to sweep. KEYS: that list. ARGV:
 * member, soonest expiry ('' for none left), swept until ('' from a write: only ever lowers it).
 * A sweep removes or raises the entry only while it is not sooner than what the sweep saw, so a
 * write that added a sooner expiry meanwhile is kept.
 */
const NOTE_EXPIRY = new LuaScript(
  'state-note-expiry',
  1,
  `
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[3] == '' then
  if not cur or tonumber(cur) > tonumber(ARGV[2]) then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
  return 1
end
if cur and tonumber(cur) > tonumber(ARGV[3]) and (ARGV[2] == '' or tonumber(cur) <= tonumber(ARGV[2])) then return 0 end
if ARGV[2] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
return 1
`,
);

/**
 * Takes a namespace out of a tenant's namespaces if its entry is still the one that was read (a
 * write that made it non-empty again since then has renewed the entry). KEYS: namespaces. ARGV:
 * namespace, score read.
 */
const FORGET_NAMESPACE = new LuaScript(
  'state-forget-namespace',
  1,
  `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`,
);

/** How long an empty namespace stays listed (a writer may be about to fill it again). */
const EMPTY_NAMESPACE_KEPT_MS = 60_000;

/** How many namespaces {@link StateStore.namespaces} lists at most. */
export const MAX_LISTED_NAMESPACES = 1000;

/** How many namespaces one sweep round ends keys in at most. */
const SWEEP_NAMESPACES = 100;

/**
 * Shared state: per tenant, namespaces of keys with JSON values, each key versioned (compare-and-set
 * with `ifVersion`) and optionally expiring. Every namespace of a tenant lives in one hash slot
 * (`{st:<tenant>:<namespace>}`): a key is a hash, the namespace's index a sorted set in byte order,
 * and every change is published on the namespace's channel by the script that makes it. Keys expire
 * in Redis by themselves; one process per round (a lock) ends them in the index and publishes their
 * `expire` events.
 */
export class StateStore {
  readonly maxValueBytes: number;
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  private readonly sweepMs: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping = false;

  constructor(private readonly options: StateStoreOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.maxValueBytes = options.maxValueBytes ?? 256 * 1024;
    this.sweepMs = options.sweepMs ?? 1000;
  }

  /** Starts ending expired keys (their `expire` events), every round, on one process of the cluster. */
  start(): void {
    this.sweepTimer = setInterval(() => void this.sweep(), this.sweepMs);
    this.sweepTimer.unref();
  }

  close(): void {
    clearInterval(this.sweepTimer);
  }

  /** The channel a namespace's changes are published on. */
  channel(tenant: string, namespace: string): string {
    return this.keys.stateChannel(tenant, namespace);
  }

  /**
   * A key, or undefined when it is absent (or expired).
   * @throws {GatewayError} `UNAVAILABLE` when Redis cannot be reached.
   */
  async get(tenant: string, namespace: string, key: string): Promise<StateEntry | undefined> {
    const [json, ver, at, exp] = await this.guard(() =>
      this.redis.hmget(this.keys.stateValue(tenant, namespace, key), 'v', 'ver', 'at', 'exp'),
    );
    if (json === null || json === undefined || ver === null || ver === undefined) return undefined;
    const entry: StateEntry = { namespace, key, value: JSON.parse(json), version: Number(ver), updatedAt: Number(at) };
    if (exp !== null && exp !== undefined) entry.expiresAt = Number(exp);
    return entry;
  }

  /**
   * Writes a key. @returns its new version.
   * @throws {GatewayError} `PAYLOAD_TOO_LARGE` for a value over the limit; `CONFLICT` with
   * `details.version` when `ifVersion` is not the current version (0: absent); `UNAVAILABLE`.
   */
  async set(
    tenant: string,
    namespace: string,
    key: string,
    value: unknown,
    options: { ttlMs?: number; ifVersion?: number } = {},
  ): Promise<{ version: number; expiresAt?: number }> {
    const json = JSON.stringify(value);
    const bytes = Buffer.byteLength(json);
    if (bytes > this.maxValueBytes) {
      throw new GatewayError(
        'PAYLOAD_TOO_LARGE',
        `the value is ${bytes} bytes of JSON; a state value may have at most ${this.maxValueBytes}`,
        { details: [{ field: 'value', message: `at most ${this.maxValueBytes} bytes, got ${bytes}` }] },
      );
    }
    const now = Date.now();
    const [applied, version, expires, only] = await this.guard(() =>
      SET.run<[number, number, number?, number?]>(
        this.redis,
        ...this.keysOf(tenant, namespace, key),
        key,
        json,
        options.ifVersion === undefined ? '' : String(options.ifVersion),
        String(now),
        options.ttlMs === undefined ? '' : String(options.ttlMs),
        this.keys.stateChannel(tenant, namespace),
        namespace,
        options.ttlMs === undefined ? '' : String(now + options.ttlMs),
      ),
    );
    if (applied === 0) throw conflict(namespace, key, options.ifVersion ?? 0, version);
    // A namespace that was empty is (again) one of the tenant's: listed by `namespaces()`.
    if (only === 1) await this.guard(() => this.redis.zadd(this.keys.stateNamespaces(tenant), now, namespace));
    if (options.ttlMs === undefined) return { version };
    await this.guard(() =>
      NOTE_EXPIRY.run(this.redis, this.keys.stateExpiring(), `${tenant}/${namespace}`, String(expires), ''),
    );
    return { version, expiresAt: now + options.ttlMs };
  }

  /**
   * Deletes a key. @returns whether it was there.
   * @throws {GatewayError} `CONFLICT` with `details.version` when `ifVersion` is not current; `UNAVAILABLE`.
   */
  async delete(tenant: string, namespace: string, key: string, ifVersion?: number): Promise<boolean> {
    const [applied, version] = await this.guard(() =>
      DELETE.run<[number, number]>(
        this.redis,
        ...this.keysOf(tenant, namespace, key),
        key,
        ifVersion === undefined ? '' : String(ifVersion),
        this.keys.stateChannel(tenant, namespace),
        namespace,
      ),
    );
    if (applied === 0) throw conflict(namespace, key, ifVersion ?? 0, version);
    return version > 0;
  }

  /**
   * A page of a namespace's keys that start with `prefix`, in byte order, after `cursor` (the cursor
   * of the page before). @returns the keys, and the cursor of the next page while more may remain.
   * @throws {GatewayError} `BAD_REQUEST` for a cursor of another prefix; `UNAVAILABLE`.
   */
  async list(
    tenant: string,
    namespace: string,
    options: { prefix?: string; limit?: number; cursor?: string | null } = {},
  ): Promise<{ items: StateListItem[]; cursor?: string }> {
    const prefix = options.prefix ?? '';
    const limit = options.limit ?? 100;
    let after: string | undefined;
    if (options.cursor !== undefined && options.cursor !== null) {
      after = decodeCursor(options.cursor);
      if (after === undefined || !after.startsWith(prefix)) {
        throw new GatewayError('BAD_REQUEST', 'cursor is not one that state.list gave for this prefix', {
          details: [{ field: 'cursor', message: 'expected the cursor of the previous page, for the same prefix' }],
        });
      }
    }
    const min = after !== undefined ? `(${after}` : prefix === '' ? '-' : `[${prefix}`;
    const max = prefix === '' ? '+' : Buffer.concat([Buffer.from(`[${prefix}`), Buffer.from([0xff])]);
    const index = this.keys.stateIndex(tenant, namespace);
    const members = await this.guard(() => this.redis.zrangebylex(index, min, max, 'LIMIT', 0, limit));
    const items: StateListItem[] = [];
    if (members.length > 0) {
      const pipeline = this.redis.pipeline();
      for (const key of members) pipeline.hmget(this.keys.stateValue(tenant, namespace, key), 'ver', 'at');
      const rows = await this.guard(async () => (await pipeline.exec()) ?? []);
      const gone: string[] = [];
      rows.forEach(([error, row], i) => {
        if (error) throw new GatewayError('UNAVAILABLE', 'the state store (Redis) is unavailable', { cause: error });
        const [ver, at] = row as [string | null, string | null];
        if (ver === null) gone.push(members[i]!);
        else items.push({ key: members[i]!, version: Number(ver), updatedAt: Number(at) });
      });
      // Keys that expired and were not swept yet: out of the index now.
      if (gone.length > 0) {
        for (const key of gone) {
          const exists = await this.guard(() => this.redis.exists(this.keys.stateValue(tenant, namespace, key)));
          if (exists === 0) await this.guard(() => this.redis.zrem(index, key));
        }
      }
    }
    return members.length === limit ? { items, cursor: encodeCursor(members.at(-1)!) } : { items };
  }

  /**
   * The tenant's namespaces that `accept` lets through (the caller's `state:read` permission), in byte
   * order, with how many keys each holds; at most {@link MAX_LISTED_NAMESPACES}. A namespace left
   * empty for a minute drops out of the list (and comes back with its next key).
   * @throws {GatewayError} `UNAVAILABLE`.
   */
  async namespaces(tenant: string, accept: (namespace: string) => boolean): Promise<NamespaceSummary[]> {
    const listKey = this.keys.stateNamespaces(tenant);
    const flat = await this.guard(() => this.redis.zrange(listKey, 0, -1, 'WITHSCORES'));
    const seen: { namespace: string; score: string }[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      if (accept(flat[i]!)) seen.push({ namespace: flat[i]!, score: flat[i + 1]! });
    }
    seen.sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
    const listed = seen.slice(0, MAX_LISTED_NAMESPACES);
    // One command each: a tenant's namespaces live in different slots on Redis Cluster.
    const counts = await this.guard(() =>
      Promise.all(listed.map(({ namespace }) => this.redis.zcard(this.keys.stateIndex(tenant, namespace)))),
    );
    const now = Date.now();
    const out: NamespaceSummary[] = [];
    listed.forEach(({ namespace, score }, i) => {
      const since = Number(score);
      if (counts[i] === 0 && now - since > EMPTY_NAMESPACE_KEPT_MS) {
        void FORGET_NAMESPACE.run(this.redis, listKey, namespace, score).catch(() => undefined);
        return;
      }
      out.push({ namespace, keys: counts[i]!, since });
    });
    return out;
  }

  /** One round: ends the expired keys of the namespaces that have some, if no other process does now. */
  private async sweep(): Promise<void> {
    if (this.sweeping || this.redis.status !== 'ready') return;
    this.sweeping = true;
    try {
      const { redis, keys } = this;
      const mine = await redis
        .set(keys.stateSweepLock(), this.options.processId, 'PX', Math.max(100, this.sweepMs - 100), 'NX')
        .catch(() => null);
      if (mine !== 'OK') return;
      const time = await redis.time();
      const until = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
      const due = await redis.zrangebyscore(keys.stateExpiring(), '-inf', until, 'LIMIT', 0, SWEEP_NAMESPACES);
      for (const member of due) {
        const slash = member.indexOf('/');
        const tenant = member.slice(0, slash);
        const namespace = member.slice(slash + 1);
        const next = await SWEEP.run<string | null>(
          redis,
          keys.stateExpiry(tenant, namespace),
          keys.stateIndex(tenant, namespace),
          keys.stateExpiryVersions(tenant, namespace),
          keys.stateChannel(tenant, namespace),
          namespace,
        );
        await NOTE_EXPIRY.run(redis, keys.stateExpiring(), member, next ?? '', String(until));
      }
    } catch (error) {
      this.options.logger.warn({ err: (error as Error).message }, 'could not end expired state keys; trying again');
    } finally {
      this.sweeping = false;
    }
  }

  private keysOf(tenant: string, namespace: string, key: string): [string, string, string, string] {
    return [
      this.keys.stateValue(tenant, namespace, key),
      this.keys.stateIndex(tenant, namespace),
      this.keys.stateExpiry(tenant, namespace),
      this.keys.stateExpiryVersions(tenant, namespace),
    ];
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw new GatewayError('UNAVAILABLE', 'the state store (Redis) is unavailable; retry shortly', { cause: error });
    }
  }
}

function conflict(namespace: string, key: string, expected: number, current: number): GatewayError {
  return new GatewayError(
    'CONFLICT',
    `key '${key}' of namespace '${namespace}' is at version ${current}, not ${expected}`,
    { details: { version: current } },
  );
}

/** A listing's cursor: the last key of the page, in base64url (opaque to clients). */
function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  return key.length > 0 && key.length <= 512 ? key : undefined;
}
