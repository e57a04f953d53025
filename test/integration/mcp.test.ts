import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  CreateTaskResultSchema,
  ListToolsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { applyPolicy, auditTail, createApiKey, runCli } from '../helpers/cli';
import { type Cluster, startAgent, startCluster, type TestAgent } from '../helpers/cluster';
import { waitFor } from '../helpers/wait';
import { TestSocket } from '../helpers/ws-client';

const ADMIN = 'bootstrap-admin-key-for-mcp-tests-01';
const SECRET = 'a-server-secret-of-at-least-32-characters!';

/**
 * The gateway as an MCP server (Streamable HTTP at /mcp), driven by the official MCP client
 * (`@modelcontextprotocol/sdk`) against two real replicas: tools from agents' input schemas, a tool
 * call answered by an agent on the other replica, progress, permissions per tool, tenants, a
 * governance denial and an approval, the audit.
 */
describe('MCP server', () => {
  let cluster: Cluster;
  const keys: Record<string, string> = {};
  const open: { close(): Promise<void> }[] = [];

  const mcp = async (key: string, replica = 0): Promise<Client> => {
    const client = new Client({ name: 'openclaw-mcp-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${cluster.gateways[replica]!.httpUrl}/mcp`), {
      requestInit: { headers: { 'x-api-key': keys[key] ?? key } },
    });
    await client.connect(transport);
    open.push(client);
    return client;
  };

  /**
   * An agent on replica 1 with input schemas for its tasks: `shout` upper-cases its text, `report`
   * reports two stages of progress first, any other task answers with what it got.
   */
  const agentWithSchemas = async (tenant: string, name: string): Promise<TestAgent> => {
    const agent: TestAgent = await startAgent(cluster.gateways[1]!.url, {
      name,
      concurrency: 8,
      headers: { 'x-api-key': keys[`${tenant}-agent`]! },
      inputSchemas: {
        quote: {
          type: 'object',
          properties: { sku: { type: 'string' }, qty: { type: 'integer', minimum: 1 } },
          required: ['sku'],
        },
        shout: { type: 'string', maxLength: 100 },
        report: { type: 'object' },
      },
      answer: (task) => {
        if (task.task === 'report') {
          for (const stage of ['reading', 'writing']) {
            agent.socket.send({ action: 'task.progress', taskId: task.taskId, progress: { stage } });
          }
        }
        const output = task.task === 'shout' ? String(task.data).toUpperCase() : { got: task.data, task: task.task };
        return { action: 'task.result', taskId: task.taskId, output };
      },
    });
    open.push(agent);
    return agent;
  };

  beforeAll(async () => {
    cluster = await startCluster({
      replicas: 2,
      // Tool calls run as tasks are the gateway's async tasks.
      workers: 1,
      auth: 'apikey',
      apiKeys: [ADMIN],
      // The outside MCP server of the last test listens on loopback.
      env: { OPENCLAW_API_KEY_SECRET: SECRET, OPENCLAW_HTTP_AGENTS_ALLOW_PRIVATE: 'true' },
    });
    const url = cluster.gateways[0]!.httpUrl;
    for (const tenant of ['acme', 'globex']) {
      for (const role of ['caller', 'agent', 'approver']) {
        keys[`${tenant}-${role}`] = await createApiKey(url, ADMIN, { name: `${tenant}-${role}`, role, tenant });
      }
    }
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.close().catch(() => undefined)));
    await cluster.stop();
  });

  it("lists an agent's tasks with input schemas as tools, and calls one on an agent attached to the other replica", async () => {
    await agentWithSchemas('acme', 'pricer');
    const client = await mcp('acme-caller', 0);
    expect(client.getServerVersion()).toMatchObject({ name: 'openclaw-gateway' });
    const { tools } = await client.listTools();
    const quote = tools.find((t) => t.name === 'pricer.quote');
    expect(quote).toMatchObject({
      inputSchema: { type: 'object', required: ['sku'], properties: { sku: { type: 'string' } } },
    });
    // A task whose data is not an object: the tool takes it as its argument `data`.
    expect(tools.find((t) => t.name === 'pricer.shout')).toMatchObject({
      inputSchema: { type: 'object', properties: { data: { type: 'string' } }, required: ['data'] },
    });
    const result = await client.callTool({ name: 'pricer.quote', arguments: { sku: 'a-1', qty: 2 } });
    expect(result.isError).toBeUndefined();
    expect(result.structuredContent).toEqual({ got: { sku: 'a-1', qty: 2 }, task: 'quote' });
    expect(JSON.parse((result.content as { text: string }[])[0]!.text)).toEqual({
      got: { sku: 'a-1', qty: 2 },
      task: 'quote',
    });
    const shout = await client.callTool({ name: 'pricer.shout', arguments: { data: 'hello' } });
    expect(shout.content).toEqual([{ type: 'text', text: 'HELLO' }]);
    // Arguments that do not match the schema never reach the agent: the input-schema validator refuses them.
    const invalid = await client.callTool({ name: 'pricer.quote', arguments: { qty: 2 } });
    expect(invalid.isError).toBe(true);
    expect(invalid.structuredContent).toMatchObject({ error: { code: 'POLICY_DENIED' } });
    expect((invalid.content as { text: string }[])[0]!.text).toMatch(/sku/);
    // The task is the gateway's: audited as routed, through MCP.
    const trail = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'acme');
    expect(trail).toContainEqual(
      expect.objectContaining({
        type: 'task.routed',
        outcome: 'ok',
        details: expect.objectContaining({ agent: 'pricer', task: 'quote', via: 'mcp' }),
      }),
    );
  });

  it('streams the agent’s progress as MCP progress notifications', async () => {
    await agentWithSchemas('acme', 'reporter');
    const client = await mcp('acme-caller', 0);
    const progress: { progress: number; message?: string }[] = [];
    const result = await client.callTool({ name: 'reporter.report', arguments: { q: 3 } }, undefined, {
      onprogress: (p) => progress.push(p),
    });
    expect(result.structuredContent).toEqual({ got: { q: 3 }, task: 'report' });
    expect(progress).toEqual([
      expect.objectContaining({ progress: 1, message: '{"stage":"reading"}' }),
      expect.objectContaining({ progress: 2, message: '{"stage":"writing"}' }),
    ]);
  });

  it('runs a tool call as a task: created, polled and read, the gateway’s own task; and cancels one', async () => {
    await agentWithSchemas('acme', 'longer');
    const client = await mcp('acme-caller', 0);
    expect((await client.listTools()).tools.find((t) => t.name === 'longer.report')?.execution).toEqual({
      taskSupport: 'optional',
    });
    const messages = [];
    for await (const message of client.experimental.tasks.callToolStream(
      { name: 'longer.report', arguments: { q: 9 } },
      CallToolResultSchema,
      { task: { ttl: 60_000 } },
    )) {
      messages.push(message);
    }
    expect(messages[0]).toMatchObject({ type: 'taskCreated', task: { status: 'working' } });
    expect(messages.at(-1)).toMatchObject({
      type: 'result',
      result: { structuredContent: { got: { q: 9 }, task: 'report' } },
    });
    const taskId = messages[0]!.type === 'taskCreated' ? messages[0]!.task.taskId : '';
    const socket = await TestSocket.open(cluster.gateways[1]!.url, { headers: { 'x-api-key': keys['acme-caller']! } });
    open.push(socket);
    expect(await socket.request({ action: 'task.get', id: 1, taskId })).toMatchObject({
      ok: true,
      result: { taskId, agent: 'longer', task: 'report', status: 'completed' },
    });

    // A call the agent holds: canceled through MCP, its result is the cancellation.
    const holder = await startAgent(cluster.gateways[1]!.url, {
      name: 'holder',
      headers: { 'x-api-key': keys['acme-agent']! },
      inputSchemas: { hold: { type: 'object' } },
      answer: () => undefined,
    });
    open.push(holder);
    const created = await client.request(
      { method: 'tools/call', params: { name: 'holder.hold', arguments: {}, task: {} } },
      CreateTaskResultSchema,
    );
    await waitFor(async () => holder.received.length === 1, { what: 'the held call at the agent' });
    const canceled = await client.experimental.tasks.cancelTask(created.task.taskId);
    expect(canceled.status).toBe('cancelled');
    await holder.socket.nextEvent('task.cancel', 10_000);
    const result = await client.experimental.tasks.getTaskResult(created.task.taskId, CallToolResultSchema);
    expect(result.isError).toBe(true);
    await expect(client.experimental.tasks.cancelTask(created.task.taskId)).rejects.toThrow(/cannot be canceled/);
    const trail = await auditTail(cluster.gateways[0]!.httpUrl, ADMIN, 'acme');
    expect(trail).toContainEqual(
      expect.objectContaining({ type: 'task.canceled', details: expect.objectContaining({ via: 'mcp' }) }),
    );
  });

  it('keeps tenants apart, refuses bad credentials with 401, and names a bad tool call', async () => {
    const globex = await mcp('globex-caller', 1);
    expect((await globex.listTools()).tools.map((t) => t.name)).not.toContain('pricer.quote');
    await expect(globex.callTool({ name: 'pricer.quote', arguments: { sku: 'x' } })).rejects.toThrow(
      /tool 'pricer.quote': no such tool, or not one you may call/,
    );
    const refused = await mcp('not-a-key-of-this-cluster').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(StreamableHTTPError);
    expect((refused as StreamableHTTPError).code).toBe(401);
    // An approver may not invoke agents: it sees no tools, and a call by name is refused.
    const approver = await mcp('acme-approver', 0);
    expect((await approver.listTools()).tools).toEqual([]);
    await expect(approver.callTool({ name: 'pricer.quote', arguments: { sku: 'x' } })).rejects.toThrow(/no such tool/);
    // Raw: a GET (no server stream in stateless mode) and a body that is not JSON.
    const url = `${cluster.gateways[0]!.httpUrl}/mcp`;
    const get = await fetch(url, { headers: { 'x-api-key': keys['acme-caller']!, accept: 'text/event-stream' } });
    expect(get.status).toBe(405);
    const junk = await fetch(url, {
      method: 'POST',
      headers: { 'x-api-key': keys['acme-caller']!, 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(junk.status).toBe(400);
    expect(await junk.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
  });

  it('applies governance to tool calls: a denial is a tool error, an approval lets the call through', async () => {
    await applyPolicy(
      cluster,
      ADMIN,
      `
governance:
  rules:
    - name: no-bulk
      when: { agent: pricer, task: quote, data: { qty: { gt: 100 } } }
      verdict: deny
      reason: bulk quotes go through sales
    - name: big-orders
      when: { agent: pricer, task: quote, data: { qty: { gt: 10 } } }
      verdict: require-approval
      reason: orders over ten need a person
`,
    );
    const client = await mcp('acme-caller', 0);
    const denied = await client.callTool({ name: 'pricer.quote', arguments: { sku: 'a-1', qty: 500 } });
    expect(denied.isError).toBe(true);
    expect((denied.content as { text: string }[])[0]!.text).toMatch(/^POLICY_DENIED: .*bulk quotes go through sales/);
    expect(denied.structuredContent).toMatchObject({ error: { code: 'POLICY_DENIED' } });

    // Held for a person: the MCP client hears why, an approver approves over the WebSocket, the call ends.
    const approver = await TestSocket.open(cluster.gateways[1]!.url, {
      headers: { 'x-api-key': keys['acme-approver']! },
    });
    open.push(approver);
    const progress: { message?: string }[] = [];
    const call = client.callTool({ name: 'pricer.quote', arguments: { sku: 'a-1', qty: 20 } }, undefined, {
      onprogress: (p) => progress.push(p),
      timeout: 30_000,
    });
    let approvalId = '';
    await waitFor(
      async () => {
        const pending = await approver.request({ action: 'approval.list', id: 'l', status: 'pending' });
        const first = (pending.result as { approvalId: string; agent: string }[] | undefined)?.find(
          (a) => a.agent === 'pricer',
        );
        approvalId = first?.approvalId ?? '';
        return approvalId !== '';
      },
      { what: 'the approval of the tool call' },
    );
    expect(
      await approver.request({ action: 'approval.decide', id: 'd', approvalId, decision: 'approve', reason: 'ok' }),
    ).toMatchObject({ ok: true });
    const approved = await call;
    expect(approved.isError).toBeUndefined();
    expect(approved.structuredContent).toEqual({ got: { sku: 'a-1', qty: 20 }, task: 'quote' });
    expect(progress[0]?.message).toMatch(/waiting for an approval \(rule:big-orders: orders over ten need a person\)/);
    await applyPolicy(cluster, ADMIN, 'governance: {}\n');
  });

  it("registers an outside MCP server as an agent: its tools are the agent's tasks, called through the gate", async () => {
    const outside = await startOutsideMcpServer();
    try {
      const gw = cluster.gateways[0]!.httpUrl;
      const registered = await runCli([
        ...['agent', 'register', '--name', 'calc', '--mcp', outside.url, '--gateway', gw],
        ...['--api-key', keys['acme-agent']!],
      ]);
      expect(registered.stderr).toBe('');
      expect(registered.stdout).toBe(`registered MCP server as agent 'calc' -> ${outside.url} (tools: add, explode)\n`);
      const usage = await runCli(['agent', 'register', '--name', 'calc', '--gateway', gw]);
      expect(usage.code).toBe(2);
      expect(usage.stderr).toContain(
        'one of --url <url> (an HTTP endpoint), --mcp <url> (an MCP server) or --a2a <url>',
      );

      // A native caller on the other replica calls a tool as a task.
      const caller = await TestSocket.open(cluster.gateways[1]!.url, {
        headers: { 'x-api-key': keys['acme-caller']! },
      });
      open.push(caller);
      expect(
        await caller.request({ action: 'coordinator', id: 1, agent: 'calc', task: 'add', data: { a: 2, b: 3 } }),
      ).toMatchObject({ ok: true, result: { status: 'completed', output: { sum: 5 } } });
      // The tool's error is the agent's error; arguments against the tool's schema never reach it.
      expect(
        await caller.request({ action: 'coordinator', id: 2, agent: 'calc', task: 'explode', data: {} }),
      ).toMatchObject({ ok: false, error: { code: 'AGENT_ERROR', message: 'boom: the tool failed' } });
      expect(
        await caller.request({ action: 'coordinator', id: 3, agent: 'calc', task: 'add', data: { a: 'two', b: 3 } }),
      ).toMatchObject({ ok: false, error: { code: 'POLICY_DENIED' } });
      expect(outside.calls).toEqual(['add', 'explode']);

      // Governance and the audit, as for any agent.
      await applyPolicy(
        cluster,
        ADMIN,
        'governance:\n  rules:\n    - name: no-big-sums\n      when: { agent: calc, data: { a: { gt: 1000 } } }\n      verdict: deny\n',
      );
      expect(
        await caller.request({ action: 'coordinator', id: 4, agent: 'calc', task: 'add', data: { a: 5000, b: 1 } }),
      ).toMatchObject({ ok: false, error: { code: 'POLICY_DENIED' } });
      expect(outside.calls).toHaveLength(2);
      await applyPolicy(cluster, ADMIN, 'governance: {}\n');
      const trail = await auditTail(gw, ADMIN, 'acme');
      expect(trail).toContainEqual(
        expect.objectContaining({ type: 'http-agent.registered', details: expect.objectContaining({ agent: 'calc' }) }),
      );

      // And it is a tool of this gateway's own MCP server too.
      const client = await mcp('acme-caller', 1);
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(['calc.add']));
      expect((await client.callTool({ name: 'calc.add', arguments: { a: 1, b: 1 } })).structuredContent).toEqual({
        sum: 2,
      });
    } finally {
      await outside.close();
    }
  });
});

/**
 * An MCP server as an outside team would build it with `@modelcontextprotocol/sdk` (the low-level
 * `Server` over Streamable HTTP, with sessions): `add` sums two numbers, `explode` fails.
 */
async function startOutsideMcpServer(): Promise<{ url: string; calls: string[]; close(): Promise<void> }> {
  const calls: string[] = [];
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const build = (): Server => {
    const server = new Server({ name: 'calculator', version: '1.0.0' }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: [
        {
          name: 'add',
          description: 'Adds two numbers',
          inputSchema: {
            type: 'object',
            properties: { a: { type: 'number' }, b: { type: 'number' } },
            required: ['a', 'b'],
          },
        },
        { name: 'explode', description: 'Always fails', inputSchema: { type: 'object' } },
      ],
    }));
    server.setRequestHandler(CallToolRequestSchema, async (request) => {
      calls.push(request.params.name);
      if (request.params.name === 'explode') {
        return { isError: true, content: [{ type: 'text', text: 'boom: the tool failed' }] };
      }
      const { a, b } = request.params.arguments as { a: number; b: number };
      return { content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } };
    });
    return server;
  };
  const http: HttpServer = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown) : undefined;
    const sessionId = req.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
    if (!transport) {
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          transports.set(id, created);
        },
      });
      await build().connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, body);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    close: async () => {
      await Promise.all([...transports.values()].map((t) => t.close()));
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}
