import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import { exitOf, isRunning, releasePath, trackChild, trackPath } from '../helpers/child-reaper';
import { startAgent } from '../helpers/cluster';
import { GatewayProcess } from '../helpers/gateway-process';
import { freePort } from '../helpers/ports';
import { RedisServerProcess } from '../helpers/redis-server';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

/** A real `redis-server --sentinel` watching one master, with fast failure detection. */
async function startSentinel(masterPort: number): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'openclaw-sentinel-'));
  trackPath(dir);
  const port = await freePort();
  const conf = path.join(dir, 'sentinel.conf');
  fs.writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor mymaster 127.0.0.1 ${masterPort} 1`,
      'sentinel down-after-milliseconds mymaster 1000',
      'sentinel failover-timeout mymaster 5000',
      'sentinel parallel-syncs mymaster 1',
      '',
    ].join('\n'),
  );
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  trackChild(child, `redis sentinel on ${port}`);
  const exited = exitOf(child);
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => undefined);
  await waitFor(
    async () => {
      if (!isRunning(child)) throw new Error('the sentinel exited');
      try {
        if (probe.status !== 'ready') await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        return false;
      }
    },
    { what: 'the sentinel to answer' },
  );
  probe.disconnect();
  return {
    port,
    async stop() {
      if (isRunning(child)) child.kill('SIGTERM');
      await exited;
      await releasePath(dir);
    },
  };
}

/**
 * Redis behind Sentinel: the replicas reach the master through `redis+sentinel://`, and when the
 * master dies, Sentinel promotes its replica and the cluster follows without a restart.
 */
describe('Redis Sentinel', () => {
  it('follows a failover: calls fail fast and retryable while there is no master, then work again', async () => {
    const master = await RedisServerProcess.start();
    const replica = await RedisServerProcess.start({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    const sentinel = await startSentinel(master.port);
    const url = `redis+sentinel://127.0.0.1:${sentinel.port}/mymaster`;
    const gateways = await Promise.all(
      ['A', 'B'].map((replicaId) => GatewayProcess.start({ redisUrl: url, replicaId, keyPrefix: 'sentinel' })),
    );
    const [a, b] = gateways as [GatewayProcess, GatewayProcess];
    try {
      const agent = await startAgent(b.url, { name: 'survivor' });
      const caller = await TestSocket.open(a.url);
      const call = (id: string) =>
        caller.request({ action: 'coordinator', id, agent: 'survivor', task: 't', data: id }, 10_000);
      expect(await call('before')).toMatchObject({ ok: true, result: { output: { echo: 'before' } } });
      // Let the replica catch up with the registrations, then lose the master for good.
      const direct = new Redis(master.port, '127.0.0.1');
      try {
        await waitFor(async () => /slave0:.*state=online/.test(await direct.info('replication')), {
          what: 'the replica to be in sync',
        });
        await direct.wait(1, 1000);
      } finally {
        direct.disconnect();
      }
      // Sentinel learns of replicas from the master's INFO (every 10 s): one it has not seen yet could
      // not be promoted once the master is gone, and there would never be a master again.
      const watcher = new Redis(sentinel.port, '127.0.0.1');
      try {
        await waitFor(
          async () => {
            const known = (await watcher.call('SENTINEL', 'REPLICAS', 'mymaster')) as string[][];
            return known.some((fields) => {
              const flags = fields[fields.indexOf('flags') + 1] ?? '';
              return fields.includes(String(replica.port)) && !/s_down|disconnected/.test(flags);
            });
          },
          { what: 'Sentinel to know the replica', timeoutMs: 20_000 },
        );
      } finally {
        watcher.disconnect();
      }
      await master.kill();

      // Until Sentinel has promoted the replica, calls fail, fast and retryable; then they work again.
      const failures: { code: string; retryable: boolean }[] = [];
      let n = 0;
      await waitFor(
        async () => {
          const reply = await call(`during-${n++}`);
          if (reply.ok) return true;
          failures.push(reply.error as { code: string; retryable: boolean });
          return false;
        },
        // One call every 200 ms at most while there is no master.
        { what: 'calls to work again after the failover', timeoutMs: 45_000, intervalMs: 200 },
      ).catch((error: Error) => {
        const codes = [...new Set(failures.map((f) => f.code))].join(', ') || 'none';
        throw new Error(`${error.message}; ${failures.length} calls answered with an error (${codes})`);
      });
      for (const failure of failures)
        expect(failure.retryable ? failure : failure.code).toMatchObject({ retryable: true });
      const promoted = new Redis(replica.port, '127.0.0.1');
      try {
        expect(await promoted.info('replication')).toMatch(/role:master/);
      } finally {
        promoted.disconnect();
      }
      for (const g of gateways) {
        await waitFor(async () => (await fetch(`${g.httpUrl}/readyz`)).status === 200, {
          what: `${g.replicaId} ready`,
        });
      }
      expect(await call('after')).toMatchObject({ ok: true, result: { output: { echo: 'after' } } });
      console.log(
        `sentinel failover: ${failures.length} calls failed meanwhile (${[...new Set(failures.map((f) => f.code))].join(', ')})`,
      );
      await Promise.all([caller.close(), agent.close()]);
    } finally {
      await Promise.allSettled(gateways.map((g) => g.stop()));
      await sentinel.stop();
      await Promise.allSettled([master.stop(), replica.stop()]);
    }
  });
});
