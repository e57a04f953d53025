import * as http from 'node:http';
import * as net from 'node:net';
import { Redis } from 'ioredis';
import { WebSocketServer } from 'ws';
import { freePort } from './ports';
import { parseMonitorLine, RedisMonitor } from './redis-monitor';
import { RedisServerProcess } from './redis-server';
import requiredTools from './required-tools';
import { waitFor } from './wait';
import { TestSocket, UpgradeRejectedError } from './ws-client';

/** A client that fails fast instead of retrying, so a refused connection shows at once. */
function client(url: string): Redis {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on('error', () => {
    // Expected while the server is down; each test asserts the outcome of its own commands.
  });
  return redis;
}

/** The error code of a TCP connection attempt to 127.0.0.1:`port`, or 'connected'. */
function connectError(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

// The integration project's testTimeout does not reach tests (jest reads it from the global config only).
jest.setTimeout(30_000);

describe('RedisServerProcess', () => {
  let server: RedisServerProcess | undefined;

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  test('serves on a free port, refuses once killed, and serves again on the same port after restart', async () => {
    server = await RedisServerProcess.start();
    const { port } = server;
    expect(port).not.toBe(6379);
    expect(server.url).toBe(`redis://127.0.0.1:${port}`);
    const firstPid = server.pid;

    const before = client(server.url);
    await before.connect();
    expect(await before.ping()).toBe('PONG');
    expect(await before.set('harness:key', 'v1')).toBe('OK');
    before.disconnect();

    expect(await server.kill()).toEqual({ code: null, signal: 'SIGKILL' });
    expect(server.isRunning).toBe(false);
    await expect(connectError(port)).resolves.toBe('ECONNREFUSED');

    await server.restart();
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(firstPid);
    const after = client(server.url);
    await after.connect();
    expect(await after.ping()).toBe('PONG');
    // No persistence: a crash loses the data set.
    expect(await after.get('harness:key')).toBeNull();
    after.disconnect();

    expect(await server.stop()).toEqual({ code: 0, signal: null });
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  test('restarts a running server gracefully on the same port', async () => {
    server = await RedisServerProcess.start();
    const { port, pid } = server;
    await server.restart();
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(pid);
    const redis = client(server.url);
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
    redis.disconnect();
  });

  test('waits for a busy fixed port to be released before restarting', async () => {
    server = await RedisServerProcess.start();
    await server.kill();
    // Another process holding the port: it accepts and drops connections, as a non-Redis would.
    const squatter = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(server?.port, '127.0.0.1', resolve));
    // It lets the port go after half a second: restart() has to retry meanwhile.
    const released = new Promise<void>((resolve) => setTimeout(() => squatter.close(() => resolve()), 500));
    await server.restart();
    await released;
    const redis = client(server.url);
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
    redis.disconnect();
  });

  test('refuses the shared Redis port', async () => {
    await expect(RedisServerProcess.start({ port: 6379 })).rejects.toThrow(
      'refusing to start redis-server on port 6379: it belongs to the shared Redis',
    );
  });

  test('reports a server that exits before it is ready, with its output', async () => {
    await expect(RedisServerProcess.start({ args: ['--no-such-option', 'x'] })).rejects.toThrow(
      /exited \(code 1, signal null\) before it was ready:\n[\s\S]*no-such-option/,
    );
  });
});

describe('RedisMonitor', () => {
  test('reports every command run while it starts, in order, with the arguments unescaped', async () => {
    const server = await RedisServerProcess.start();
    const busy = client(server.url);
    await busy.connect();
    try {
      // Commands keep arriving while MONITOR is being answered, so the first ones may share a packet
      // with its OK (which ioredis's own monitor() reports as a "Command queue state error").
      let sent = 0;
      let running = true;
      const load = (async () => {
        // Twenty at a time, so the server writes their reports out in bursts.
        while (running) {
          const batch = Array.from({ length: 20 }, (_, i) => busy.set('harness:n', String(sent + i + 1)));
          sent += batch.length;
          await Promise.all(batch);
        }
      })();
      const seen: string[][] = [];
      const monitor = await RedisMonitor.open(server.url, (command) => seen.push([...command]));
      const awkward = 'say "hi"\n\ttab\u00e9';
      await busy.echo(awkward);
      await waitFor(() => seen.some((c) => c[0] === 'echo'), { what: 'the echo reported' });
      running = false;
      await load;
      monitor.close();
      const numbers = seen.filter((c) => c[0] === 'set').map((c) => Number(c[2]));
      // None missing: each SET reported, from the first, one after another.
      expect(numbers.length).toBeGreaterThan(0);
      expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
      expect(seen.find((c) => c[0] === 'echo')).toEqual(['echo', Buffer.from(awkward).toString('latin1')]);
    } finally {
      busy.disconnect();
      await server.stop();
    }
  });

  test('parses a line as Redis writes it', () => {
    expect(parseMonitorLine('+1700000000.123456 [0 lua] "GET" "a:{b}"')).toEqual(['GET', 'a:{b}']);
    expect(parseMonitorLine('+1.2 [0 127.0.0.1:5000] "publish" "c" "{\\"k\\":\\"v\\"}\\x00\\\\"')).toEqual([
      'publish',
      'c',
      '{"k":"v"}\x00\\',
    ]);
    expect(parseMonitorLine('+OK')).toEqual([]);
  });
});

describe('TestSocket', () => {
  const rejection = JSON.stringify({ error: { code: 'UNAUTHENTICATED', message: 'missing credentials' } });
  let httpServer: http.Server;
  let wss: WebSocketServer;
  let url: string;

  beforeAll(async () => {
    httpServer = http.createServer();
    wss = new WebSocketServer({ noServer: true });
    httpServer.on('upgrade', (request, socket, head) => {
      if (request.headers['x-api-key'] !== 'k') {
        socket.end(
          `HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${rejection.length}\r\nConnection: close\r\n\r\n${rejection}`,
        );
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => {
        // Frames sent before the client awaits anything: they must be buffered, not lost.
        ws.send(JSON.stringify({ event: 'welcome', n: 1 }));
        ws.send(JSON.stringify({ event: 'welcome', n: 2 }));
        ws.send('not json');
        ws.on('message', (data) => {
          const text = String(data);
          if (text === 'close-me') return ws.close(1009, 'too big');
          const frame = JSON.parse(text) as { id?: unknown };
          ws.send(JSON.stringify({ id: 'other', ok: true, result: 'not yours' }));
          ws.send(JSON.stringify({ id: frame.id ?? null, ok: true, result: 'echo' }));
        });
      });
    });
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    url = `ws://127.0.0.1:${(httpServer.address() as net.AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const ws of wss.clients) ws.terminate();
    await new Promise((resolve) => wss.close(resolve));
    await new Promise((resolve) => httpServer.close(resolve));
  });

  test('buffers early frames and hands them out by what is awaited', async () => {
    const socket = await TestSocket.open(url, { headers: { 'x-api-key': 'k' } });
    expect(await socket.nextFrame((f) => f.n === 2, 1_000)).toEqual({ event: 'welcome', n: 2 });
    expect(await socket.nextEvent('welcome', 1_000)).toEqual({ event: 'welcome', n: 1 });
    expect(await socket.request({ action: 'ping', id: 7 })).toEqual({ id: 7, ok: true, result: 'echo' });
    expect(socket.pending()).toEqual([{ id: 'other', ok: true, result: 'not yours' }]);
    expect(await socket.nextResponse((r) => r.id === 'other')).toEqual({ id: 'other', ok: true, result: 'not yours' });
    expect(await socket.request({ action: 'ping' })).toEqual({ id: null, ok: true, result: 'echo' });
    expect(socket.unparsedFrames()).toEqual(['not json']);
    await expect(socket.nextEvent('never', 100)).rejects.toThrow(
      /^timed out after 100 ms waiting for event "never" \(unmatched frames: \{"id":"other"/,
    );
    expect(await socket.close()).toEqual({ code: 1000, reason: '' });
  });

  test('rejects waits when the server closes, with the close code', async () => {
    const socket = await TestSocket.open(url, { headers: { 'x-api-key': 'k' } });
    const waiting = socket.nextEvent('never', 5_000);
    socket.send('close-me');
    await expect(waiting).rejects.toThrow('socket closed with 1009 "too big" while waiting for event "never"');
    expect(await socket.closed).toEqual({ code: 1009, reason: 'too big' });
  });

  test('exposes the status and body of a rejected upgrade', async () => {
    const error = await TestSocket.open(url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpgradeRejectedError);
    expect(error).toMatchObject({ status: 401, json: JSON.parse(rejection) });
  });

  test('rejects with the connection error when nothing listens', async () => {
    const port = await freePort();
    await expect(TestSocket.open(`ws://127.0.0.1:${port}`)).rejects.toThrow(
      `could not open ws://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });
});

describe('waitFor', () => {
  test('resolves with the first truthy value', async () => {
    let calls = 0;
    expect(await waitFor(() => (++calls === 3 ? 'done' : undefined), { what: 'three calls', intervalMs: 1 })).toBe(
      'done',
    );
    expect(calls).toBe(3);
  });

  test('names what it waited for, and the last error, when it times out', async () => {
    await expect(
      waitFor(
        () => {
          throw new Error('not yet');
        },
        { what: 'the impossible', timeoutMs: 100, intervalMs: 10 },
      ),
    ).rejects.toThrow(/^timed out after 100 ms waiting for the impossible \(\d+ attempts; last error: not yet\)$/);
  });
});

describe('required tools', () => {
  const saved = process.env.OPENCLAW_TEST_CHROMIUM;
  afterEach(() => {
    if (saved === undefined) delete process.env.OPENCLAW_TEST_CHROMIUM;
    else process.env.OPENCLAW_TEST_CHROMIUM = saved;
  });

  it('passes when every tool is there, and otherwise stops the run with one message naming what to install', () => {
    expect(() => requiredTools()).not.toThrow();
    process.env.OPENCLAW_TEST_CHROMIUM = '/nonexistent/chromium';
    expect(() => requiredTools()).toThrow(
      'The integration tests need chromium (/nonexistent/chromium), which is not installed.\n' +
        'Install with: sudo apt-get install chromium\n' +
        'or run `bash .ci/run`, which installs what is missing and then runs the tests.',
    );
  });
});
