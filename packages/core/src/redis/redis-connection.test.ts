import { redisTarget } from '../config/redis-url';
import { redactRedisUrl } from './redis-connection';

describe('redisTarget', () => {
  it('leaves redis:// and rediss:// URLs to ioredis', () => {
    expect(redisTarget('redis://127.0.0.1:6379')).toEqual({ kind: 'url' });
    expect(redisTarget('rediss://user:secret@redis.example.com:6380/2')).toEqual({ kind: 'url' });
  });

  it('reads a Sentinel set: hosts with default ports, the master name, credentials, db and TLS', () => {
    expect(redisTarget('redis+sentinel://s1,s2:26380,[::1]:26381/mymaster')).toEqual({
      kind: 'sentinel',
      options: {
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26380 },
          { host: '::1', port: 26381 },
        ],
        name: 'mymaster',
        failoverDetector: true,
      },
    });
    const tls = redisTarget(
      'rediss+sentinel://app:p%40ss@s1:26379/cache/3?sentinelUsername=watch&sentinelPassword=s%26cret',
    );
    expect(tls).toEqual({
      kind: 'sentinel',
      options: {
        sentinels: [{ host: 's1', port: 26379 }],
        name: 'cache',
        username: 'app',
        password: 'p@ss',
        sentinelUsername: 'watch',
        sentinelPassword: 's&cret',
        db: 3,
        tls: {},
        sentinelTLS: {},
        enableTLSForSentinelMode: true,
        failoverDetector: true,
      },
    });
  });

  it('reads a Redis Cluster: seed nodes with default ports, credentials and TLS', () => {
    expect(redisTarget('redis+cluster://n1,n2:7001,[::1]:7002')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'n1', port: 6379 },
        { host: 'n2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      redisOptions: {},
    });
    expect(redisTarget('rediss+cluster://app:p%40ss@n1:7000/')).toEqual({
      kind: 'cluster',
      nodes: [{ host: 'n1', port: 7000 }],
      redisOptions: { username: 'app', password: 'p@ss', tls: {} },
    });
    expect(() => redisTarget('redis+cluster://n1:7000/2')).toThrow(/no database/);
    expect(() => redisTarget('redis+cluster://n1:0')).toThrow(/'n1:0' is not a cluster node host\[:port\]/);
  });

  it('says what is wrong with a URL it cannot use', () => {
    expect(() => redisTarget('http://redis:6379')).toThrow(
      /expected redis:\/\/, rediss:\/\/, redis\+cluster:\/\/.*, or redis\+sentinel/,
    );
    expect(() => redisTarget('redis+sentinel://s1:26379')).toThrow(/master name/);
    expect(() => redisTarget('redis+sentinel://s1:99999/m')).toThrow(/'s1:99999' is not a sentinel host\[:port\]/);
    expect(() => redisTarget('redis+sentinel://s1/m?password=x')).toThrow(/unknown parameter 'password'/);
    expect(() => redisTarget('redis://')).toThrow(/valid redis/);
  });

  it('keeps passwords out of what it logs, for every kind of URL', () => {
    expect(redactRedisUrl('redis+sentinel://app:secret@s1,s2/m')).toBe('redis+sentinel://app:***@s1,s2/m');
    expect(redactRedisUrl('rediss+cluster://app:secret@n1,n2')).toBe('rediss+cluster://app:***@n1,n2');
    expect(redactRedisUrl('rediss://:secret@redis.example.com:6380/0')).toBe('rediss://:***@redis.example.com:6380/0');
    expect(redactRedisUrl('redis://secret@redis:6379')).toBe('redis://***@redis:6379');
    expect(redactRedisUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });
});
