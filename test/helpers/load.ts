import { connect, type GatewayClient, GatewayError } from '@openclaw/sdk';
import { type Cluster, type ClusterOptions, startCluster } from './cluster';
import { NginxProcess } from './nginx';

/** Reconnection of the load tests' SDK clients: quick, so a test sees a few steps of it. */
export const RECONNECT = { initialDelayMs: 200, maxDelayMs: 1000 };

/** SDK clients of one gateway URL (nginx in front of replicas), closed together at the end. */
export class SdkClients {
  private readonly clients: GatewayClient[] = [];

  constructor(private readonly url: () => string) {}

  async open(): Promise<GatewayClient> {
    const client = await connect({ url: this.url(), reconnect: RECONNECT, requestTimeoutMs: 15_000 });
    this.clients.push(client);
    return client;
  }

  /**
   * `count` clients, each one instance of agent `steady` (concurrency 8) whose task `work` answers
   * `{done: data}` after 5 ms. `onRun` sees each task's data as it runs.
   */
  async steadyAgents(count: number, onRun: (data: unknown) => void = () => undefined): Promise<GatewayClient[]> {
    const agents: GatewayClient[] = [];
    for (let i = 0; i < count; i++) {
      const client = await this.open();
      const agent = client.agent('steady', { concurrency: 8 });
      agent.handle('work', async (data) => {
        onRun(data);
        await new Promise((resolve) => setTimeout(resolve, 5));
        return { done: data };
      });
      await agent.register();
      agents.push(client);
    }
    return agents;
  }

  closeAll(): Promise<unknown> {
    return Promise.allSettled(this.clients.map((c) => c.close()));
  }
}

/** A stream of async tasks for agent `steady`, each submitted until the gateway accepts it. */
export interface SubmitStream {
  /** The task ids accepted, in order (a repeat with the same key gives the same id). */
  readonly submitted: string[];
  /** Submits sent again after a refusal, by error code. */
  readonly resubmits: Map<string, number>;
  /** Stops submitting; resolves once the last submit is accepted. */
  stop(): Promise<void>;
}

/**
 * Submits `{k}` to `steady`/`work` every 20 ms, each with its own idempotency key: a submit whose answer
 * was lost is sent again (after 100 ms), and is the same task.
 */
export function submitStream(submitter: GatewayClient, keyPrefix: string): SubmitStream {
  const submitted: string[] = [];
  const resubmits = new Map<string, number>();
  let running = true;
  const loop = (async () => {
    let k = 0;
    while (running) {
      const key = `${keyPrefix}-${++k}`;
      for (;;) {
        try {
          submitted.push((await submitter.submit('steady', 'work', { k }, { idempotencyKey: key })).taskId);
          break;
        } catch (error) {
          const code = error instanceof GatewayError ? error.code : String(error);
          resubmits.set(code, (resubmits.get(code) ?? 0) + 1);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    submitted,
    resubmits,
    stop: () => {
      running = false;
      return loop;
    },
  };
}

/** Waits for every task to end; @returns how many ended in each way (`completed`, or `<status> <code>: <message>`). */
export async function outcomesOf(client: GatewayClient, taskIds: readonly string[]): Promise<Map<string, number>> {
  const outcomes = await Promise.all([...new Set(taskIds)].map((taskId) => client.waitForTask(taskId)));
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = o.status === 'completed' ? o.status : `${o.status} ${o.error?.code}: ${o.error?.message}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** A cluster behind nginx, with SDK clients through it: see {@link clusterBehindNginx}. */
export interface BalancedCluster {
  readonly cluster: Cluster;
  readonly nginx: NginxProcess;
  readonly clients: SdkClients;
}

/**
 * For a `describe` block: starts a cluster and a real nginx in front of its replicas before the tests
 * (`beforeAll`), and closes the clients, nginx and the cluster after them (`afterAll`).
 */
export function clusterBehindNginx(options: ClusterOptions): BalancedCluster {
  let cluster: Cluster | undefined;
  let nginx: NginxProcess | undefined;
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the cluster behind nginx is started in beforeAll');
    return value;
  };
  const clients = new SdkClients(() => started(nginx).url);
  beforeAll(async () => {
    cluster = await startCluster(options);
    nginx = await NginxProcess.start(cluster.gateways.map((g) => g.port));
  });
  afterAll(async () => {
    await clients.closeAll();
    await nginx?.stop();
    await cluster?.stop();
  });
  return {
    get cluster() {
      return started(cluster);
    },
    get nginx() {
      return started(nginx);
    },
    clients,
  };
}
