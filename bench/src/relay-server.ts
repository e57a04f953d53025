// The floor: a bare ws + Redis pub/sub relay with no features (no validation, auth, deadlines, task
// records or load spreading). Each process subscribes to one inbox channel of its own; a request is
// one PUBLISH to the agent's process, the result one PUBLISH back to the caller's process.
// Usage: node relay-server.js <port> <redisUrl> <relayId>
import Redis from 'ioredis';
import { type WebSocket, WebSocketServer } from 'ws';

const [port, redisUrl, relayId] = process.argv.slice(2) as [string, string, string];
const pub = new Redis(redisUrl);
const sub = new Redis(redisUrl);
pub.on('error', () => undefined);
sub.on('error', () => undefined);

/** Connections of this process by id; an id is `<relayId>|<n>`, so it names its process too. */
const connections = new Map<string, WebSocket>();
/** Agent name to the connection id of its socket, cached from the `agents` hash. */
const agents = new Map<string, string>();
let nextConnection = 0;

/** What the relay processes send each other. */
interface Relayed {
  t: 'task' | 'response';
  conn: string;
  id: number;
  from?: string;
  data?: unknown;
  output?: unknown;
}

/** What clients send. */
interface ClientFrame {
  t: 'register' | 'request' | 'result';
  id: number;
  name?: string;
  agent?: string;
  from?: string;
  data?: unknown;
  output?: unknown;
}

const inbox = (connection: string): string => `relay:${connection.split('|')[0]}`;

void sub.subscribe(`relay:${relayId}`);
sub.on('message', (_channel: string, raw: string) => {
  const m = JSON.parse(raw) as Relayed;
  const ws = connections.get(m.conn);
  if (!ws) return;
  const frame =
    m.t === 'task'
      ? { t: 'task', id: m.id, from: m.from, data: m.data }
      : { t: 'response', id: m.id, output: m.output };
  ws.send(JSON.stringify(frame));
});

async function agentConnection(name: string): Promise<string> {
  let target = agents.get(name);
  if (target === undefined) {
    target = (await pub.hget('agents', name)) ?? '';
    agents.set(name, target);
  }
  return target;
}

const wss = new WebSocketServer({ port: Number(port), host: '127.0.0.1', perMessageDeflate: false });
wss.on('connection', (ws) => {
  const connId = `${relayId}|${nextConnection++}`;
  connections.set(connId, ws);
  ws.on('close', () => connections.delete(connId));
  ws.on('message', async (raw) => {
    const m = JSON.parse(String(raw)) as ClientFrame;
    if (m.t === 'register' && m.name) {
      await pub.hset('agents', m.name, connId);
      ws.send(JSON.stringify({ t: 'registered' }));
    } else if (m.t === 'request' && m.agent) {
      const target = await agentConnection(m.agent);
      const message: Relayed = { t: 'task', conn: target, id: m.id, from: connId, data: m.data };
      void pub.publish(inbox(target), JSON.stringify(message));
    } else if (m.t === 'result' && m.from) {
      const message: Relayed = { t: 'response', conn: m.from, id: m.id, output: m.output };
      void pub.publish(inbox(m.from), JSON.stringify(message));
    }
  });
});

// Never outlive the benchmark: it holds the other end of the IPC channel.
process.on('disconnect', () => process.exit(0));
