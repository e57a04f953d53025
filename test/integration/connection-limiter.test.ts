import { ConnectionLimiter, RedisKeys } from '@openclaw/core';
import Redis from 'ioredis';
import { RedisServerProcess } from '../helpers/redis-server';

/** The per-principal connection count in a real Redis, through the losses Redis can inflict on it. */
describe('ConnectionLimiter', () => {
  let redis: RedisServerProcess;
  let client: Redis;
  const keys = new RedisKeys('limiter');

  beforeAll(async () => {
    redis = await RedisServerProcess.start();
    client = new Redis(redis.url, { lazyConnect: true });
    await client.connect();
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  it('counts live sessions again after their entries were lost (Redis restarted empty, a long outage)', async () => {
    const limiter = new ConnectionLimiter(client, keys);
    expect(await limiter.acquire('alice', 's1', 1)).toBe(true);
    expect(await limiter.acquire('alice', 's2', 1)).toBe(false);

    // The entries are gone, as after a restart without persistence; s1 is still connected.
    await client.flushall();
    // A session admitted meanwhile, as while Redis was down: nothing was written for it either.
    await limiter.refresh([
      { principal: 'alice', sessionId: 's1' },
      { principal: 'bob', sessionId: 'b1' },
    ]);
    expect(await limiter.acquire('alice', 's3', 1)).toBe(false);
    expect(await limiter.acquire('bob', 'b2', 1)).toBe(false);
    expect(await client.zrange(keys.connections('alice'), 0, -1)).toEqual(['s1']);
    const ttl = await client.pttl(keys.connections('alice'));
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);

    // A released session frees its slot.
    limiter.release('alice', 's1');
    expect(await limiter.acquire('alice', 's4', 1)).toBe(true);
  });
});
