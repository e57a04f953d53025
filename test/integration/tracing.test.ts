import { randomBytes } from 'node:crypto';
import { runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster } from '../helpers/cluster';
import { OtlpReceiver } from '../helpers/otlp-receiver';
import { taskEnd } from '../helpers/tasks';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

/** One trace per request across the cluster, exported over OTLP to a receiver the test runs. */
describe('tracing', () => {
  let cluster: Cluster;
  const receiver = new OtlpReceiver();
  let otel: Record<string, string>;

  beforeAll(async () => {
    const endpoint = await receiver.start();
    otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    cluster = await startCluster({
      replicas: 2,
      workers: 1,
      env: { ...otel, OPENCLAW_LOG_LEVEL: 'debug' },
      workerEnv: otel,
    });
  });
  afterAll(async () => {
    await cluster.stop();
    await receiver.stop();
  });

  it('makes one trace of a sync call across two replicas, continuing the caller’s traceparent into the agent', async () => {
    const [a, b] = cluster.gateways;
    const agent = await startAgent(b!.url, { name: 'traced' });
    const caller = await TestSocket.open(a!.url);
    const traceId = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const reply = await caller.request({
      action: 'coordinator',
      id: 1,
      agent: 'traced',
      task: 'work',
      data: { secret: 'payload-never-in-spans' },
      traceparent: `00-${traceId}-${callerSpan}-01`,
    });
    expect(reply.ok).toBe(true);
    // The agent got the trace context with its task.
    expect(String(agent.received[0]!.traceparent)).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

    const want = [
      'openclaw coordinator',
      'bus publish task.dispatch',
      'bus receive task.dispatch',
      'agent task.result',
      'bus publish task.reply',
      'bus receive task.reply',
    ];
    await waitFor(() => want.every((name) => receiver.inTrace(traceId).some((s) => s.name === name)), {
      what: `the spans of trace ${traceId}`,
      timeoutMs: 15_000,
    });
    const spans = receiver.inTrace(traceId);
    const byName = (name: string) => spans.find((s) => s.name === name)!;
    // The call's span continues the caller's; the hops chain across both replicas.
    expect(byName('openclaw coordinator')).toMatchObject({
      parentSpanId: callerSpan,
      attributes: { 'openclaw.replica': a!.replicaId },
    });
    expect(byName('bus receive task.dispatch').attributes['openclaw.replica']).toBe(b!.replicaId);
    expect(byName('bus receive task.dispatch').parentSpanId).toBe(byName('bus publish task.dispatch').spanId);
    expect(byName('bus receive task.reply').attributes['openclaw.replica']).toBe(a!.replicaId);
    expect(new Set(spans.map((s) => s.attributes['openclaw.replica']).filter(Boolean))).toEqual(
      new Set([a!.replicaId, b!.replicaId]),
    );
    // Every span has a parent in the trace, except the one continuing the caller's.
    const ids = new Set(spans.map((s) => s.spanId));
    for (const span of spans) {
      if (span.name !== 'openclaw coordinator') expect(ids.has(span.parentSpanId)).toBe(true);
    }
    // Its log line names the trace and the span.
    const logged = a!
      .logRecords()
      .find((r) => r.msg === 'request' && r.action === 'coordinator' && r.trace_id === traceId);
    expect(logged).toMatchObject({ span_id: byName('openclaw coordinator').spanId, outcome: 'ok' });
    // Payloads never go into spans.
    expect(JSON.stringify(receiver.spans)).not.toContain('payload-never-in-spans');
    // Redis command spans exist only under a parent (background polling makes none).
    const redisSpans = receiver.spans.filter(
      (s) => s.attributes['db.system'] === 'redis' || s.attributes['db.system.name'] === 'redis',
    );
    expect(redisSpans.length).toBeGreaterThan(0);
    for (const span of redisSpans) expect(span.parentSpanId).not.toBe('');
    await Promise.all([caller.close(), agent.close()]);
  });

  it('makes a span of each connection’s upgrade, continuing a traceparent header, refused ones too', async () => {
    const [a] = cluster.gateways;
    const traceId = randomBytes(16).toString('hex');
    const parent = randomBytes(8).toString('hex');
    const socket = await TestSocket.open(a!.url, { headers: { traceparent: `00-${traceId}-${parent}-01` } });
    const hello = await socket.request({ action: 'hello', id: 1 });
    const refusedTrace = randomBytes(16).toString('hex');
    await expect(
      TestSocket.open(`${a!.url}/elsewhere`, {
        headers: { traceparent: `00-${refusedTrace}-${randomBytes(8).toString('hex')}-01` },
      }),
    ).rejects.toThrow(/404/);
    const connects = (trace: string) => receiver.inTrace(trace).filter((s) => s.name === 'openclaw connect');
    await waitFor(() => connects(traceId).length > 0 && connects(refusedTrace).length > 0, {
      what: 'the connect spans',
    });
    // One span per upgrade (its Redis commands, for the connection slot, are its children).
    expect(connects(traceId)).toEqual([
      expect.objectContaining({
        name: 'openclaw connect',
        parentSpanId: parent,
        attributes: expect.objectContaining({
          'openclaw.outcome': 'accepted',
          'openclaw.session': (hello.result as { sessionId: string }).sessionId,
        }),
      }),
    ]);
    expect(connects(refusedTrace)).toEqual([
      expect.objectContaining({
        name: 'openclaw connect',
        attributes: expect.objectContaining({ 'openclaw.outcome': 'NOT_FOUND' }),
      }),
    ]);
    await socket.close();
  });

  it('traces the CLI’s requests into the replica that answers them', async () => {
    const result = await runCli(['gateway', 'status', '--url', cluster.gateways[0]!.httpUrl, '--json'], otel);
    expect(result.code).toBe(0);
    const client = await waitFor(
      () => receiver.spans.find((s) => s.service === 'openclaw-cli' && s.name === 'openclaw-cli GET /v1/cluster'),
      { what: "the CLI's span", timeoutMs: 10_000 },
    );
    const server = await waitFor(
      () => receiver.spans.find((s) => s.name === 'openclaw GET /v1/cluster' && s.traceId === client.traceId),
      { what: "the replica's span in the CLI's trace", timeoutMs: 10_000 },
    );
    expect(server).toMatchObject({ service: 'openclaw-gateway', parentSpanId: client.spanId });
  });

  it('makes one trace of an async workflow across replicas and a worker', async () => {
    const [a, b] = cluster.gateways;
    const fetcher = await startAgent(a!.url, { name: 'fetcher' });
    const cleaner = await startAgent(b!.url, { name: 'cleaner' });
    const caller = await TestSocket.open(b!.url);
    const traceId = randomBytes(16).toString('hex');
    const started = await caller.request({
      action: 'workflow.start',
      id: 1,
      workflow: {
        name: 'pipeline',
        steps: [
          { id: 'fetch', agent: 'fetcher', task: 'fetch' },
          { id: 'clean', agent: 'cleaner', task: 'clean' },
        ],
      },
      input: { url: 'https://example.com' },
      traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
    });
    expect(started.ok).toBe(true);
    const taskId = (started.result as { taskId: string }).taskId;
    expect(await taskEnd(caller, taskId, 30_000)).toMatchObject({ status: 'completed' });
    for (const received of [...fetcher.received, ...cleaner.received]) {
      expect(String(received.traceparent)).toContain(traceId);
    }
    await waitFor(
      () => {
        const spans = receiver.inTrace(traceId);
        return (
          spans.some((s) => s.name === 'openclaw workflow.start') &&
          spans.filter((s) => s.name === 'job task').length >= 2 &&
          spans.some((s) => s.name === 'job workflow') &&
          spans.some((s) => s.name === 'queue add workflow') &&
          spans.filter((s) => s.name === 'agent task.result').length >= 2
        );
      },
      { what: `the workflow's spans in trace ${traceId}`, timeoutMs: 20_000 },
    );
    const spans = receiver.inTrace(traceId);
    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(['openclaw-gateway', 'openclaw-worker']));
    const receivers = new Set(
      spans.filter((s) => s.name === 'bus receive task.dispatch').map((s) => s.attributes['openclaw.replica']),
    );
    expect(receivers).toEqual(new Set([a!.replicaId, b!.replicaId]));
    await Promise.all([caller.close(), fetcher.close(), cleaner.close()]);
  });
});
