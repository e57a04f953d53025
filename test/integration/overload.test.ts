import { type Cluster, startCluster } from '../helpers/cluster';
import { NginxProcess } from '../helpers/nginx';
import { TestSocket } from '../helpers/ws-client';

/**
 * Overload, on real replicas: the per-replica connection cap (503 with Retry-After, which nginx turns
 * into a connection to another replica). Slow consumers (1013) are in hostile-input.test.ts.
 */
describe('overload', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    // A: the default cap; B: five connections at most.
    cluster = await startCluster({ replicas: 1 });
    await cluster.addReplica('B', { OPENCLAW_MAX_CONNECTIONS: '5' });
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
