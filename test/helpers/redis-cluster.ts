import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Redis, { Cluster } from 'ioredis';
import { freePort } from './ports';
import { RedisServerProcess } from './redis-server';
import { delay } from './wait';

const run = promisify(execFile);

/** Options for {@link RedisClusterProcesses.start}. */
export interface RedisClusterOptions {
  /** Masters, each owning an equal share of the 16384 slots. Default 3. */
  masters?: number;
  /** Replicas of each master. Default 1. */
  replicasPerMaster?: number;
  /** `cluster-node-timeout` in ms: how long a master may be silent before its replica takes over. Default 2000. */
  nodeTimeoutMs?: number;
  /** How long `start()` may take, in milliseconds. Default 30 000. */
  startTimeoutMs?: number;
}

/** One node as `CLUSTER NODES` sees it. */
export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** For a replica, the id of its master. */
  masterId?: string;
  /** Slot ranges a master owns, as `[first, last]`. */
  slots: [number, number][];
  failed: boolean;
}

/**
 * A real Redis Cluster on 127.0.0.1: `redis-server --cluster-enabled yes` child processes on free
 * ports (each with its own cluster bus port), joined with `redis-cli --cluster create`, no
 * persistence. Tests kill nodes, watch failovers and move slots on it.
 *
 * @example
 * ```ts
 * const cluster = await RedisClusterProcesses.start();
 * process.env.REDIS_URL = cluster.url; // redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...
 * await cluster.stop();
 * ```
 */
export class RedisClusterProcesses {
  private constructor(
    readonly nodes: RedisServerProcess[],
    private readonly nodeTimeoutMs: number,
  ) {}

  static async start(options: RedisClusterOptions = {}): Promise<RedisClusterProcesses> {
    const masters = options.masters ?? 3;
    const replicas = options.replicasPerMaster ?? 1;
    const nodeTimeoutMs = options.nodeTimeoutMs ?? 2000;
    const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
    const nodes: RedisServerProcess[] = [];
    try {
      for (let i = 0; i < masters * (1 + replicas); i++) {
        nodes.push(
          await RedisServerProcess.start({
            args: [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              'nodes.conf',
              '--cluster-node-timeout',
              String(nodeTimeoutMs),
              // The cluster bus on a port of its own (not the default port + 10000, which may be taken).
              '--cluster-port',
              String(await freePort()),
              // A lone replica must be able to take over even if it missed a little of the replication stream.
              '--cluster-replica-validity-factor',
              '0',
              '--lazyfree-lazy-expire',
              'yes',
              // A replica's first sync starts at once (Redis waits 5 s by default for more replicas).
              '--repl-diskless-sync-delay',
              '0',
            ],
          }),
        );
      }
      const cluster = new RedisClusterProcesses(nodes, nodeTimeoutMs);
      await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...nodes.map((n) => `127.0.0.1:${n.port}`),
          '--cluster-replicas',
          String(replicas),
          '--cluster-yes',
        ],
        { timeout: Math.max(1000, deadline - Date.now()) },
      );
      await cluster.waitUntilHealthy(deadline - Date.now());
      // Replicas attach to their masters a moment after the slots are assigned, then sync: a test
      // that kills a master must find its replica holding its data.
      for (;;) {
        const attached = (await cluster.topology()).filter((n) => n.role === 'replica' && !n.failed);
        const synced = await Promise.all(
          attached.map(async (n) =>
            /master_link_status:up/.test(String(await command(n.port, ['INFO', 'replication']))),
          ),
        );
        if (attached.length === masters * replicas && synced.every(Boolean)) break;
        if (Date.now() >= deadline) {
          throw new Error(
            `only ${synced.filter(Boolean).length} of ${masters * replicas} replicas attached and in sync`,
          );
        }
        await delay(100);
      }
      return cluster;
    } catch (error) {
      await Promise.all(nodes.map((n) => n.stop()));
      throw error;
    }
  }

  /** `redis+cluster://127.0.0.1:<port>,...` naming every node, as `REDIS_URL` takes it. */
  get url(): string {
    return `redis+cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  /** A new Redis Cluster client of the test's own (the caller disconnects it). */
  client(): Cluster {
    const client = new Cluster(
      this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
      { redisOptions: { maxRetriesPerRequest: null } },
    );
    client.on('error', () => undefined);
    return client;
  }

  /** The node listening on `port`. */
  node(port: number): RedisServerProcess {
    const found = this.nodes.find((n) => n.port === port);
    if (!found) throw new Error(`no node of the cluster listens on ${port}`);
    return found;
  }

  /** The cluster's nodes as a running node sees them (`CLUSTER NODES`). */
  async topology(): Promise<ClusterNodeInfo[]> {
    const running = this.nodes.find((n) => n.isRunning);
    if (!running) throw new Error('no node of the cluster is running');
    const text = await command(running.port, ['CLUSTER', 'NODES']);
    return String(text)
      .trim()
      .split('\n')
      .map((line) => {
        const [id, address, flags, master, , , , , ...slots] = line.split(' ');
        const port = Number(/:(\d+)@/.exec(address!)?.[1]);
        return {
          id: id!,
          port,
          role: flags!.includes('master') ? 'master' : 'replica',
          masterId: master === '-' ? undefined : master,
          slots: slots
            .filter((s) => !s.startsWith('['))
            .map((s) => {
              const [first, last] = s.split('-').map(Number);
              return [first!, last ?? first!] as [number, number];
            }),
          // `fail?`: some node suspects it; `fail`: the cluster agreed it is down.
          failed: flags!.includes('fail'),
        } satisfies ClusterNodeInfo;
      });
  }

  /** The port of the master that owns `key`'s slot now. */
  async masterOf(key: string): Promise<number> {
    const running = this.nodes.find((n) => n.isRunning)!;
    const slot = Number(await command(running.port, ['CLUSTER', 'KEYSLOT', key]));
    const owner = (await this.topology()).find(
      (n) => n.role === 'master' && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b),
    );
    if (!owner) throw new Error(`no master owns slot ${slot}`);
    return owner.port;
  }

  /** The slot of a key or channel name. */
  async slotOf(key: string): Promise<number> {
    const running = this.nodes.find((n) => n.isRunning)!;
    return Number(await command(running.port, ['CLUSTER', 'KEYSLOT', key]));
  }

  /**
   * Moves one slot, with its keys, to the master on `toPort`, as `redis-cli --cluster reshard` does:
   * the target imports, the source migrates, the keys move in batches (`MIGRATE`), then every master
   * learns the new owner. Clients see `ASK` redirections meanwhile and `MOVED` after.
   */
  async moveSlot(slot: number, toPort: number): Promise<void> {
    const topology = await this.topology();
    const source = topology.find((n) => n.role === 'master' && n.slots.some(([a, b]) => slot >= a && slot <= b));
    const target = topology.find((n) => n.port === toPort);
    if (!source || !target || target.role !== 'master') throw new Error(`cannot move slot ${slot} to ${toPort}`);
    if (source.port === toPort) return;
    await command(target.port, ['CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', source.id]);
    await command(source.port, ['CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', target.id]);
    for (;;) {
      const keys = (await command(source.port, ['CLUSTER', 'GETKEYSINSLOT', String(slot), '100'])) as string[];
      if (keys.length === 0) break;
      await command(source.port, ['MIGRATE', '127.0.0.1', String(target.port), '', '0', '5000', 'KEYS', ...keys]);
    }
    await command(target.port, ['CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id]);
    await command(source.port, ['CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id]);
    for (const n of topology.filter((m) => m.role === 'master' && m.port !== source.port && m.port !== target.port)) {
      await command(n.port, ['CLUSTER', 'SETSLOT', String(slot), 'NODE', target.id]);
    }
  }

  /**
   * Resolves once every running node reports `cluster_state:ok` and every slot has a master that is
   * up. @throws naming the nodes that are not there yet after `timeoutMs`.
   */
  async waitUntilHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const states = await Promise.all(
        this.nodes
          .filter((n) => n.isRunning)
          .map(async (n) => {
            try {
              const info = String(await command(n.port, ['CLUSTER', 'INFO']));
              const ok = /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info);
              return ok ? '' : `${n.port}: ${/cluster_state:(\w+)/.exec(info)?.[1]}`;
            } catch (error) {
              return `${n.port}: ${(error as Error).message}`;
            }
          }),
      );
      last = states.filter(Boolean).join(', ');
      if (last === '') return;
      if (Date.now() >= deadline) throw new Error(`the Redis Cluster is not healthy after ${timeoutMs} ms: ${last}`);
      await delay(100);
    }
  }

  /** How long a master may be silent before the cluster fails it over (`cluster-node-timeout`). */
  get nodeTimeout(): number {
    return this.nodeTimeoutMs;
  }

  /** Stops every node and removes their data. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

/** Runs one command on the node at `port` and disconnects. */
async function command(port: number, args: string[]): Promise<unknown> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.call(args[0]!, ...args.slice(1));
  } finally {
    client.disconnect();
  }
}
