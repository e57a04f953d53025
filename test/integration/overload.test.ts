import * as net from 'node:net';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import type { GatewayProcess } from '../helpers/gateway-process';
import { NginxProcess } from '../helpers/nginx';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

/**
 * Overload, on real replicas: the per-replica connection cap (503 with Retry-After, which nginx turns
 * into a connection to another replica), and slow consumers cut off at their cap, so the bytes the
 * replica holds for them stay bounded, where a replica without the cap holds everything.
 */
describe('overload', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    // A: the default cap; B: five connections at most.
    cluster = await startCluster({ replicas: 1 });
    await cluster.addReplica('B', { OPENCLAW_MAX_CONNECTIONS: '5' });
    // C and D: 1 MiB of unread frames per connection, and (the peer) 1 GiB, as good as no cap.
    await cluster.addReplica('C', { OPENCLAW_MAX_BUFFERED_BYTES: String(1024 * 1024) });
    await cluster.addReplica('D', { OPENCLAW_MAX_BUFFERED_BYTES: String(1024 * 1024 * 1024) });
  });
  afterAll(async () => {
    await cluster.stop();
  });

  it('refuses upgrades past the cap with 503 and Retry-After, even when they all arrive at once', async () => {
    const b = cluster.gateways[1]!;
    const attempts = await Promise.allSettled(Array.from({ length: 8 }, () => TestSocket.open(b.url)));
    const open = attempts.filter((a) => a.status === 'fulfilled').map((a) => a.value);
    const refused = attempts.filter((a) => a.status === 'rejected').map((a) => String(a.reason));
    expect(open).toHaveLength(5);
    expect(refused).toHaveLength(3);
    for (const reason of refused) expect(reason).toMatch(/503/);
    // What a client sees: the code, the reason, when to come back.
    const raw = await rawUpgrade(b.port);
    expect(raw.status).toBe(503);
    expect(Number(raw.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(raw.headers['retry-after'])).toBeLessThanOrEqual(3);
    expect(JSON.parse(raw.body)).toMatchObject({
      error: { code: 'UNAVAILABLE', retryable: true, details: { scope: 'replica', limit: 5 } },
    });
    // A place freed is a place taken again.
    await open[0]!.close();
    const again = await TestSocket.open(b.url);
    await Promise.all([again.close(), ...open.slice(1).map((s) => s.close())]);
  });

  it('behind nginx, connections past one replica’s cap go to another', async () => {
    const [a, b] = cluster.gateways;
    const nginx = await NginxProcess.start([a!.port, b!.port]);
    try {
      const sockets: TestSocket[] = [];
      const replicas: string[] = [];
      for (let i = 0; i < 12; i++) {
        const s = await TestSocket.open(nginx.url);
        sockets.push(s);
        replicas.push(((await s.request({ action: 'hello', id: 1 })).result as { replica: string }).replica);
      }
      expect(replicas.filter((r) => r === b!.replicaId).length).toBeLessThanOrEqual(5);
      expect(replicas.filter((r) => r === a!.replicaId).length).toBeGreaterThanOrEqual(7);
      await Promise.all(sockets.map((s) => s.close()));
    } finally {
      await nginx.stop();
    }
  });

  it('cuts slow consumers off at their cap: the bytes queued stay bounded, where the uncapped peer queues everything', async () => {
    const flood = async (replica: GatewayProcess) => {
      const big = 'z'.repeat(900 * 1024);
      const agent = await startAgent(replica.url, {
        name: `firehose-${replica.replicaId.toLowerCase()}`,
        concurrency: 256,
        answer: (t) => ({ action: 'task.result', taskId: t.taskId, output: big }),
      });
      // Four consumers that never read, each sent 30 answers of 900 KiB: 105 MiB in all.
      const slow = await Promise.all(Array.from({ length: 4 }, () => TestSocket.open(replica.url)));
      for (const s of slow) {
        (s.raw as unknown as { _socket: { pause(): void } })._socket.pause();
        for (let i = 0; i < 30; i++)
          s.send({ action: 'coordinator', id: i, agent: `firehose-${replica.replicaId.toLowerCase()}`, task: 't' });
      }
      let most = 0;
      await waitFor(
        async () => {
          const text = await (await fetch(`${replica.httpUrl}/metrics`)).text();
          most = Math.max(most, gauge(text, 'openclaw_outbound_buffered_bytes'));
          const metrics = (await (await fetch(`${replica.httpUrl}/v1/metrics`)).json()) as {
            requests: { coordinator?: Record<string, number> };
            closes: Record<string, number>;
          };
          const answered = Object.values(metrics.requests.coordinator ?? {}).reduce((a, b) => a + b, 0);
          // Done when every call has its answer (queued or dropped with its closed connection).
          return answered >= 120 || (metrics.closes['1013'] ?? 0) >= 4;
        },
        { what: `the flood on ${replica.replicaId}`, timeoutMs: 60_000, intervalMs: 50 },
      );
      // A last look, now that every answer has been queued or dropped.
      most = Math.max(
        most,
        gauge(await (await fetch(`${replica.httpUrl}/metrics`)).text(), 'openclaw_outbound_buffered_bytes'),
      );
      const { closes } = (await (await fetch(`${replica.httpUrl}/v1/metrics`)).json()) as {
        closes: Record<string, number>;
      };
      // The consumers never read the close frame either: drop them from this side.
      await Promise.all(slow.map((s) => s.terminate()));
      await agent.close();
      return { most, slowClosed: closes['1013'] ?? 0 };
    };
    const [capped, uncapped] = [cluster.gateways[2]!, cluster.gateways[3]!];
    const withCap = await flood(capped);
    const withoutCap = await flood(uncapped);
    const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
    console.log(
      `queued for slow consumers: ${mib(withCap.most)} MiB with the 1 MiB cap, ${mib(withoutCap.most)} MiB without`,
    );
    // Each consumer was closed with 1013 holding at most its cap and one more answer (with its frame).
    expect(withCap.slowClosed).toBe(4);
    expect(withoutCap.slowClosed).toBe(0);
    expect(withCap.most).toBeLessThanOrEqual(4 * 2 * 1024 * 1024);
    // The peer shows what the cap saves: without it, the unread answers pile up in the replica.
    expect(withoutCap.most).toBeGreaterThan(10 * withCap.most);
    // Both go on serving.
    for (const replica of [capped, uncapped]) {
      const caller = await TestSocket.open(replica.url);
      expect((await caller.request({ action: 'ping', id: 1 })).ok).toBe(true);
      await caller.close();
    }
  });
});

/** A WebSocket upgrade by hand, to read a refusal's status, headers and body. */
function rawUpgrade(port: number): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const { request } = require('node:http') as typeof import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({
      port,
      host: '127.0.0.1',
      path: '/',
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      reject(new Error(`unexpectedly upgraded (${res.statusCode})`));
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of an unlabelled gauge in Prometheus text. */
function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * Upgrades that go wrong hold nothing: a request URL Node cannot parse is answered 400 (it held a place
 * under the replica's cap forever, unanswered), a handshake ws refuses gives back the principal's
 * connection slot (it was held for a minute), and a refused client that never closes its side is cut.
 */
describe('upgrades that go wrong', () => {
  let cluster: Cluster;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 1,
      env: { OPENCLAW_MAX_CONNECTIONS: '2', OPENCLAW_PRINCIPAL_MAX_CONNECTIONS: '2' },
    });
    gateway = cluster.gateways[0]!;
  });
  afterAll(async () => {
    await cluster.stop();
  });

  /** Opens a connection, retrying briefly while a just-closed connection's slot is given back. */
  function openSoon(): Promise<TestSocket> {
    return waitFor(() => TestSocket.open(gateway.url), {
      what: 'a free connection slot',
      timeoutMs: 3_000,
      intervalMs: 20,
    });
  }

  it('answers an unparseable request URL with 400 and keeps no place for it', async () => {
    const held = await Promise.all([0, 1].map(() => rawExchange(gateway.port, 'GET http://[ HTTP/1.1')));
    for (const reply of held) {
      expect(reply.head).toMatch(/^HTTP\/1\.1 400 /);
      expect(JSON.parse(reply.body)).toMatchObject({
        error: { code: 'BAD_REQUEST', message: 'the request URL is not valid' },
      });
    }
    const sockets = [await openSoon(), await openSoon()];
    await Promise.all(sockets.map((s) => s.close()));
  });

  it('gives the principal its slot back when ws refuses the handshake', async () => {
    for (let i = 0; i < 2; i++) {
      const reply = await rawExchange(gateway.port, 'GET / HTTP/1.1', { 'Sec-WebSocket-Key': 'not-a-key' });
      expect(reply.head).toMatch(/^HTTP\/1\.1 400 /);
    }
    // Two slots for the principal: both free again.
    const sockets = [await openSoon(), await openSoon()];
    await Promise.all(sockets.map((s) => s.close()));
  });

  it('cuts a refused client that keeps its side open', async () => {
    const sockets = [await openSoon(), await openSoon()];
    try {
      const socket = net.connect({ port: gateway.port, host: '127.0.0.1', allowHalfOpen: true });
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => undefined);
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
      socket.write(upgradeRequest('GET / HTTP/1.1'));
      await ended;
      expect(text).toMatch(/^HTTP\/1\.1 503 /);
      // The client keeps its side open and goes on writing; once the replica has cut the socket, a
      // write draws a reset, and the next one fails.
      await waitFor(
        () => {
          if (!socket.destroyed) socket.write('still here\r\n');
          return socket.destroyed;
        },
        { what: 'the refused socket to be gone', timeoutMs: 8_000, intervalMs: 200 },
      );
      await closed;
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
    }
  });
});

/** A WebSocket upgrade request by hand, with a given request line and extra headers. */
function upgradeRequest(requestLine: string, headers: Record<string, string> = {}): string {
  const all: Record<string, string> = {
    Host: '127.0.0.1',
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    ...headers,
  };
  return `${requestLine}\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n')}\r\n\r\n`;
}

/** Sends an upgrade request over a raw socket; resolves with what came back once the server ends it. */
function rawExchange(
  port: number,
  requestLine: string,
  headers: Record<string, string> = {},
): Promise<{ head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to '${requestLine}' within 5 s (got ${JSON.stringify(text)})`));
    }, 5_000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const at = text.indexOf('\r\n\r\n');
      resolve({ head: at < 0 ? text : text.slice(0, at), body: at < 0 ? '' : text.slice(at + 4) });
    });
    socket.write(upgradeRequest(requestLine, headers));
  });
}
