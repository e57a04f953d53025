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
      // A last look once the answers have all arrived.
      await new Promise((resolve) => setTimeout(resolve, 500));
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
