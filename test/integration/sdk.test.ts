import { connect, type GatewayClient, GatewayError } from '@openclaw/sdk';
import { type Cluster, startCluster } from '../helpers/cluster';
import { GatewayProcess } from '../helpers/gateway-process';
import { waitFor } from '../helpers/wait';

/** The TypeScript SDK against real replicas: an agent on one, a caller on another. */
describe('SDK across replicas', () => {
  let cluster: Cluster;
  const clients: GatewayClient[] = [];
  const open = async (url: string): Promise<GatewayClient> => {
    const client = await connect({ url, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2, env: { OPENCLAW_DELEGATION_SECRET: 'd'.repeat(40) } });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await cluster.stop();
  });

  it('calls an agent on another replica, with progress and typed errors', async () => {
    const agentClient = await open(cluster.gateways[1]!.url);
    const agent = agentClient.agent('summarizer', { concurrency: 4 });
    agent.handle('summarize', async (data, ctx) => {
      ctx.progress({ step: 'reading' });
      const text = (data as { text: string }).text;
      return { words: text.split(' ').length, from: ctx.from.principal };
    });
    agent.handle('fail', async () => {
      throw new GatewayError('BAD_REQUEST', 'cannot summarize nothing', { retryable: false });
    });
    await agent.register();

    const caller = await open(cluster.gateways[0]!.url);
    const progress: unknown[] = [];
    const output = await caller.call(
      'summarizer',
      'summarize',
      { text: 'one two three' },
      { onProgress: (p) => progress.push(p) },
    );
    expect(output).toEqual({ words: 3, from: 'anonymous' });
    expect(progress).toEqual([{ step: 'reading' }]);

    await expect(caller.call('summarizer', 'fail', {})).rejects.toMatchObject({
      name: 'GatewayError',
      code: 'AGENT_ERROR',
      retryable: false,
      message: 'cannot summarize nothing',
    });
    await expect(caller.call('nobody', 'x')).rejects.toMatchObject({ code: 'AGENT_NOT_FOUND' });
  });

  it('cancels a running task through the caller’s signal', async () => {
    const agentClient = await open(cluster.gateways[1]!.url);
    let aborted: unknown;
    const agent = agentClient.agent('sleeper');
    agent.handle('sleep', (_data, ctx) => {
      return new Promise((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => {
          aborted = ctx.signal.reason;
          reject(ctx.signal.reason);
        });
      });
    });
    await agent.register();
    const caller = await open(cluster.gateways[0]!.url);
    const controller = new AbortController();
    const call = caller.call('sleeper', 'sleep', null, { timeoutMs: 30_000, signal: controller.signal });
    await waitFor(async () => (await caller.agentsList()).find((a) => a.name === 'sleeper')?.inFlight === 1, {
      what: 'the task to be in flight',
    });
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: 'CANCELED' });
    await waitFor(() => aborted !== undefined, { what: 'the agent to see the cancel' });
    expect(aborted).toMatchObject({ code: 'CANCELED' });
  });

  it('reconnects and registers again when its replica restarts', async () => {
    const b = cluster.gateways[1]!;
    const port = b.port;
    const agentClient = await open(b.url);
    const agent = agentClient.agent('phoenix');
    agent.handle('ping', async () => 'pong');
    await agent.register();
    const caller = await open(cluster.gateways[0]!.url);
    expect(await caller.call('phoenix', 'ping')).toBe('pong');

    const reconnected = new Promise((resolve) => agentClient.once('connected', resolve));
    await b.stop();
    // The same replica comes back on the same port, as a restarted pod would.
    const again = await GatewayProcess.start({
      redisUrl: cluster.redis.url,
      replicaId: 'B',
      keyPrefix: cluster.keyPrefix,
      args: ['--port', String(port)],
    });
    cluster.gateways[1] = again;
    expect(await reconnected).toMatchObject({ reconnected: true });
    await waitFor(async () => (await caller.call('phoenix', 'ping').catch(() => undefined)) === 'pong', {
      what: 'the agent to be reachable again after its replica restarted',
      timeoutMs: 15_000,
    });
  });

  it('mints a delegation and calls on the principal’s behalf within it', async () => {
    const billing = (await open(cluster.gateways[1]!.url)).agent('billing');
    billing.handle('charge', async (_data, ctx) => ctx.from);
    await billing.register();
    const principal = await open(cluster.gateways[0]!.url);
    const orchestrator = await open(cluster.gateways[0]!.url);
    const self = orchestrator.agent('orchestrator');
    self.handle('noop', async () => null);
    await self.register();
    // Bound to the principal the orchestrator's live instance connects as.
    const { token, depth } = await principal.delegate('orchestrator', ['agent:invoke:billing'], { maxDepth: 1 });
    expect(depth).toBe(1);
    expect(await orchestrator.call('billing', 'charge', null, { delegation: token })).toMatchObject({
      agent: 'orchestrator',
      onBehalfOf: 'anonymous',
      chain: ['anonymous', 'anonymous'],
    });
    await expect(orchestrator.call('other', 't', null, { delegation: token })).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message: "the delegation does not grant 'agent:invoke:other'",
    });
    await expect(principal.delegate('x', ['agent:invoke:a'], { maxDepth: 9 })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
  });
});
