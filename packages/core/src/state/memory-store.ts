import { GatewayError, type MemoryEntry, type MemoryEntryInput } from '@openclaw/protocol';
import { LuaScript } from '../redis/lua-script';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  redis: RedisClient;
  keys: RedisKeys;
  /** Entries a thread keeps: the oldest go first. Default 1000. */
  maxEntries?: number;
  /** A thread with no new entry for this long is dropped. Default 7 days. */
  idleMs?: number;
  /** Largest append, in UTF-8 bytes of its entries' JSON. Default 256 KiB. */
  maxAppendBytes?: number;
}

/**
 * Appends entries. KEYS: the log, the sequence counter. ARGV: idle ms, most entries kept, then each
 * entry's JSON. An entry is kept as `<seq> <json>`, scored by its sequence number. Returns the last
 * entry's sequence number.
 */
const APPEND = new LuaScript(
  'memory-append',
  2,
  `
local n = #ARGV - 2
local last = redis.call('INCRBY', KEYS[2], n)
local first = last - n + 1
for i = 1, n do
  local seq = first + i - 1
  redis.call('ZADD', KEYS[1], seq, string.format('%d', seq) .. ' ' .. ARGV[i + 2])
end
local size = redis.call('ZCARD', KEYS[1])
local keep = tonumber(ARGV[2])
if size > keep then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, size - keep - 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return last
`,
);

/** Empties a thread and keeps its counter (numbers are never reused). KEYS: the log. Returns the count. */
const CLEAR = new LuaScript(
  'memory-clear',
  1,
  `
local n = redis.call('ZCARD', KEYS[1])
redis.call('DEL', KEYS[1])
return n
`,
);

/**
 * Memory: conversation threads, per tenant, each an ordered log of entries numbered from 1 (one
 * sorted set and a counter in the thread's slot, `{mem:<tenant>:<thread>}`). A thread keeps its
 * newest `maxEntries` and is dropped whole after `idleMs` without a new entry; a cleared thread goes
 * on numbering where it was.
 */
export class MemoryStore {
  readonly maxEntries: number;
  readonly idleMs: number;
  readonly maxAppendBytes: number;

  constructor(private readonly options: MemoryStoreOptions) {
    this.maxEntries = options.maxEntries ?? 1000;
    this.idleMs = options.idleMs ?? 7 * 24 * 3_600_000;
    this.maxAppendBytes = options.maxAppendBytes ?? 256 * 1024;
  }

  /**
   * Appends entries in order. @returns the last one's sequence number.
   * @throws {GatewayError} `PAYLOAD_TOO_LARGE` over the size limit; `UNAVAILABLE`.
   */
  async append(tenant: string, thread: string, entries: readonly MemoryEntryInput[]): Promise<number> {
    const at = Date.now();
    const encoded = entries.map((entry) => {
      const stored: Record<string, unknown> = { role: entry.role, content: entry.content ?? null };
      if (entry.meta !== undefined) stored.meta = entry.meta;
      stored.at = at;
      return JSON.stringify(stored);
    });
    const bytes = encoded.reduce((sum, json) => sum + Buffer.byteLength(json), 0);
    if (bytes > this.maxAppendBytes) {
      throw new GatewayError(
        'PAYLOAD_TOO_LARGE',
        `the entries are ${bytes} bytes of JSON; one append may have at most ${this.maxAppendBytes}`,
        { details: [{ field: 'entries', message: `at most ${this.maxAppendBytes} bytes, got ${bytes}` }] },
      );
    }
    const { keys, redis } = this.options;
    return this.guard(() =>
      APPEND.run<number>(
        redis,
        keys.memoryLog(tenant, thread),
        keys.memorySeq(tenant, thread),
        String(this.idleMs),
        String(this.maxEntries),
        ...encoded,
      ),
    );
  }

  /**
   * A thread's entries, oldest first: all that are kept, those after `after`, or the newest `last`
   * of either. An unknown thread has none.
   * @throws {GatewayError} `UNAVAILABLE`.
   */
  async read(tenant: string, thread: string, options: { after?: number; last?: number } = {}): Promise<MemoryEntry[]> {
    const { keys, redis } = this.options;
    const log = keys.memoryLog(tenant, thread);
    const min = options.after === undefined ? '-inf' : `(${options.after}`;
    const members = await this.guard(async () => {
      if (options.last === undefined) return redis.zrangebyscore(log, min, '+inf');
      const newest = await redis.zrevrangebyscore(log, '+inf', min, 'LIMIT', 0, options.last);
      return newest.reverse();
    });
    return members.map((member) => {
      const space = member.indexOf(' ');
      const stored = JSON.parse(member.slice(space + 1)) as Omit<MemoryEntry, 'seq'>;
      return {
        seq: Number(member.slice(0, space)),
        role: stored.role,
        content: stored.content,
        ...(stored.meta === undefined ? {} : { meta: stored.meta }),
        at: stored.at,
      };
    });
  }

  /** Empties a thread. @returns how many entries it had. @throws {GatewayError} `UNAVAILABLE`. */
  async clear(tenant: string, thread: string): Promise<number> {
    const { keys, redis } = this.options;
    return this.guard(() => CLEAR.run<number>(redis, keys.memoryLog(tenant, thread)));
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw new GatewayError('UNAVAILABLE', 'the memory store (Redis) is unavailable; retry shortly', { cause: error });
    }
  }
}
