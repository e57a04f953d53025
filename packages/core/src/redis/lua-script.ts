import { createHash } from 'node:crypto';
import type { RedisClient } from './redis-connection';

/** An argument of a script: a key or a value, as Redis receives it. */
export type ScriptArg = string | number;

/**
 * A Lua script, run by its SHA1 (`EVALSHA`), and sent whole (`EVAL`, which also caches it in Redis)
 * the first time a connection runs it and whenever Redis no longer knows it (after a restart, a
 * failover, or `SCRIPT FLUSH`: `NOSCRIPT`).
 *
 * In place of ioredis' `defineCommand`, which copies every defined script onto each pipeline the
 * connection builds. With auto-pipelining that is one pipeline per flush, so a connection with
 * many scripts paid for all of them on every round trip (about 6 µs with 16 scripts, measured).
 * Here a script is a value: defining one costs nothing anywhere else, and a connection needs no
 * preparation.
 *
 * @example
 * const INCR_TO = new LuaScript('incr-to', 1, "return redis.call('INCRBY', KEYS[1], ARGV[1])");
 * const n = await INCR_TO.run<number>(redis, 'counter', 5);
 */
export class LuaScript {
  readonly sha: string;
  /** Connections that sent this script whole once: Redis knows it unless it lost its scripts since. */
  private readonly sentOn = new WeakSet<RedisClient>();

  /**
   * @param name for errors and logs.
   * @param numberOfKeys how many of `run`'s arguments, from the first, are keys (`KEYS`); the rest are `ARGV`.
   */
  constructor(
    readonly name: string,
    readonly numberOfKeys: number,
    readonly lua: string,
  ) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /** Runs the script with its keys first, then its other arguments. */
  async run<T = unknown>(redis: RedisClient, ...args: ScriptArg[]): Promise<T> {
    if (args.length < this.numberOfKeys) {
      throw new Error(`script ${this.name} takes ${this.numberOfKeys} keys, got ${args.length} arguments`);
    }
    if (this.sentOn.has(redis)) {
      try {
        return (await redis.evalsha(this.sha, this.numberOfKeys, ...args)) as T;
      } catch (error) {
        if (!isNoScript(error)) throw error;
      }
    }
    const result = (await redis.eval(this.lua, this.numberOfKeys, ...args)) as T;
    this.sentOn.add(redis);
    return result;
  }
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}
