import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpAgentClient, type HttpAgentRequest } from './http-agent-client';

describe('HttpAgentClient', () => {
  let server: Server;
  let port: number;
  let received = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      received += 1;
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const request = (): HttpAgentRequest => ({
    taskId: 't1',
    task: 'x',
    data: null,
    deadline: Date.now() + 5000,
    from: { principal: 'p' },
    attempt: 1,
  });

  it('posts the task and returns the JSON answer when private targets are allowed', async () => {
    const client = new HttpAgentClient({ allowPrivate: true, maxResponseBytes: 1024 });
    expect(await client.invoke(`http://localhost:${port}/run`, request())).toEqual({ ok: true });
    client.close();
  });

  it('checks the address it connects to, not only the one it looked up before', async () => {
    const client = new HttpAgentClient({ allowPrivate: false, maxResponseBytes: 1024 });
    const before = received;
    // A host name passes the URL check without a lookup; the connection's own lookup refuses it.
    await expect(client.invoke(`http://localhost:${port}/run`, request())).rejects.toMatchObject({
      code: 'AGENT_UNAVAILABLE',
      details: { reason: 'EPRIVATETARGET' },
    });
    // A literal private address is refused before any connection.
    await expect(client.invoke(`http://127.0.0.1:${port}/run`, request())).rejects.toMatchObject({
      code: 'AGENT_UNAVAILABLE',
    });
    expect(received).toBe(before);
    client.close();
  });
});
