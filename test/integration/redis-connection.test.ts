import * as net from 'node:net';
import {
  asyncTaskDefaults,
  ClusterNode,
  connectRedis,
  createRedisConnection,
  LuaScript,
  silentLogger,
} from '@openclaw/core';
import Redis from 'ioredis';
import { RedisServerProcess } from '../helpers/redis-server';
import { waitFor } from '../helpers/wait';

/**
 * A TCP proxy in front of Redis that can lose one reply: the first chunk from Redis that contains
 * `dropReplyContaining` is not forwarded, and both sides of that connection are cut, as when a
 * connection dies (a NAT timeout, CLIENT KILL, a failover) after Redis ran a command and before its
 * reply arrived.
 */
class ReplyDroppingProxy {
  dropReplyContaining: string | undefined;
  drops = 0;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {}

  static async start(upstreamPort: number): Promise<ReplyDroppingProxy> {
    const server = net.createServer();
    const proxy = new ReplyDroppingProxy(server);
    server.on('connection', (client) => {
      const upstream = net.connect(upstreamPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        proxy.sockets.add(s);
        s.on('close', () => proxy.sockets.delete(s));
        s.on('error', () => undefined);
      }
      const cut = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', cut);
      upstream.on('close', cut);
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        const drop = proxy.dropReplyContaining;
        if (drop !== undefined && chunk.toString('latin1').includes(drop)) {
          proxy.dropReplyContaining = undefined;
          proxy.drops += 1;
          cut();
          return;
        }
        client.write(chunk);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A command whose reply is lost must fail, not run again: the registry's pick script publishes the
 * task to an agent in the same round trip, so a script sent again after a reconnection would hand
 * one sync call to an agent twice (sync dispatch is at most once).
 */
describe('a request-path Redis connection that loses a reply', () => {
  let redis: RedisServerProcess;
  let proxy: ReplyDroppingProxy;
  let direct: Redis;

  beforeAll(async () => {
    redis = await RedisServerProcess.start();
    proxy = await ReplyDroppingProxy.start(redis.port);
    direct = new Redis(redis.url, { lazyConnect: true });
    await direct.connect();
  });
  afterAll(async () => {
    direct?.disconnect();
    await proxy?.close();
    await redis?.stop();
  });

  it('fails the command in flight (the script ran once) and serves the next once it reconnects', async () => {
    const command = createRedisConnection({
      url: proxy.url,
      role: 'command',
      name: 'blip:cmd',
      logger: silentLogger(),
    });
    const subscriber = direct.duplicate();
    try {
      await connectRedis(command, proxy.url, 5_000);
      const script = "redis.call('INCR', KEYS[1]); redis.call('PUBLISH', 'inbox', 'task'); return 'dispatched-once'";
      const delivered: string[] = [];
      await subscriber.subscribe('inbox');
      subscriber.on('message', (_channel: string, message: string) => {
        delivered.push(message);
      });

      proxy.dropReplyContaining = 'dispatched-once';
      const outcome = await command.eval(script, 1, 'runs').then(
        (value) => `resolved ${String(value)}`,
        (error: Error) => `rejected: ${error.message}`,
      );
      expect(proxy.drops).toBe(1);
      expect(outcome).toMatch(/^rejected: /);

      // It reconnects by itself and serves commands again; nothing was sent twice meanwhile.
      await waitFor(() => command.status === 'ready', { what: 'the command connection to reconnect' });
      expect(await command.get('runs')).toBe('1');
      expect(await direct.get('runs')).toBe('1');
      // A fence published after the checks above: a second publish of the script would have come
      // before it (one channel delivers in the order Redis ran the publishes).
      await direct.publish('inbox', 'fence');
      await waitFor(() => delivered.includes('fence'), { what: 'the fence publish' });
      expect(delivered).toEqual(['task', 'fence']);
    } finally {
      subscriber.disconnect();
      command.disconnect();
    }
  });
});

describe('a request-path Redis connection', () => {
  let redis: RedisServerProcess;

  beforeAll(async () => {
    redis = await RedisServerProcess.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it("pipelines a turn's commands into one write, but sends a publish at once (the bus batches its own)", async () => {
    const command = createRedisConnection({
      url: redis.url,
      role: 'command',
      name: 'pipe:cmd',
      logger: silentLogger(),
    });
    try {
      await connectRedis(command, redis.url, 5_000);
      const reads = [command.get('a'), command.get('b')];
      const published = command.publish('nobody', 'x');
      // The two reads wait for the end of the turn together; the publish did not join them.
      expect(command.autoPipelineQueueSize).toBe(2);
      expect(await published).toBe(0);
      expect(await Promise.all(reads)).toEqual([null, null]);
    } finally {
      command.disconnect();
    }
  });
  it('runs a script by its digest, and sends it whole only when Redis does not know it', async () => {
    const command = createRedisConnection({ url: redis.url, role: 'command', name: 'lua:cmd', logger: silentLogger() });
    const calls = async (name: string): Promise<number> => {
      const stats = await command.info('commandstats');
      return Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
    };
    try {
      await connectRedis(command, redis.url, 5_000);
      await command.config('RESETSTAT');
      const add = new LuaScript('add', 1, "return redis.call('INCRBY', KEYS[1], ARGV[1])");
      // New to this connection: sent whole (EVAL caches it in Redis), then by its digest.
      expect(await add.run<number>(command, 'lua:n', 2)).toBe(2);
      expect(await add.run<number>(command, 'lua:n', 3)).toBe(5);
      expect([await calls('eval'), await calls('evalsha')]).toEqual([1, 1]);
      // Forgotten by Redis (a restart, a failover): EVALSHA fails with NOSCRIPT, and it is sent whole again.
      await command.script('FLUSH');
      expect(await add.run<number>(command, 'lua:n', 1)).toBe(6);
      expect([await calls('eval'), await calls('evalsha')]).toEqual([2, 2]);
      expect(await add.run<number>(command, 'lua:n', 1)).toBe(7);
      expect([await calls('eval'), await calls('evalsha')]).toEqual([2, 3]);
      await expect(add.run(command)).rejects.toThrow('script add takes 1 keys, got 0 arguments');
      // An error of the script itself is the caller's.
      await command.set('lua:text', 'x');
      await expect(add.run(command, 'lua:text', 1)).rejects.toThrow(/not an integer/);
    } finally {
      command.disconnect();
    }
  });

  it("carries none of the cluster's scripts on a connection (a pipeline would copy each of them)", async () => {
    const node = new ClusterNode({
      id: 'lua-node',
      redisUrl: redis.url,
      keyPrefix: 'lua-node',
      auditSecret: 'lua-node-audit-secret-of-at-least-32-chars',
      logger: silentLogger(),
      httpAgents: { allowPrivate: false, maxResponseBytes: 1024, maxJsonDepth: 32 },
      taskDefaults: asyncTaskDefaults(),
    });
    try {
      await node.open();
      // Every component is built and has written to Redis at least once (registry, presence).
      const defined = (client: unknown) => Object.keys((client as { scriptsSet: object }).scriptsSet);
      expect(defined(node.redis)).toEqual([]);
    } finally {
      await node.close();
    }
  });
});
