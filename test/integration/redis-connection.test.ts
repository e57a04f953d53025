import * as net from 'node:net';
import { connectRedis, createRedisConnection, silentLogger } from '@openclaw/core';
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
});
