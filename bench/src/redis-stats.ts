import Redis from 'ioredis';

/** Counts the commands a redis-server executes (INFO commandstats), between `reset` and `read`. */
export class RedisCommandCounter {
  /** The connection, also lent to leak checks. */
  readonly redis: Redis;

  constructor(url: string) {
    this.redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
    this.redis.on('error', () => undefined);
  }

  async reset(): Promise<void> {
    await this.redis.config('RESETSTAT');
  }

  /** Calls per command since the last reset; commands run inside Lua scripts are counted too. */
  async read(): Promise<Record<string, number>> {
    const text = await this.redis.info('commandstats');
    const calls: Record<string, number> = {};
    for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      const command = match[1]!;
      // Our own INFO and CONFIG calls are not the system's work.
      if (command !== 'info' && command !== 'config') calls[command] = Number(match[2]);
    }
    return calls;
  }

  close(): void {
    this.redis.disconnect();
  }
}
