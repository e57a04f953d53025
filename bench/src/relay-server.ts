// The floor: a bare ws + Redis pub/sub relay with no features (no validation, auth, deadlines or load
// spreading). Each process has one inbox channel; a request is one publish to the agent's process and
// the result one publish back. Usage: node relay-server.js <port> <redisUrl> <relayId>
import Redis from 'ioredis';
import { type WebSocket, WebSocketServer } from 'ws';

const [port, redisUrl, relayId] = process.argv.slice(2) as [string, string, string];
const pub = new Redis(redisUrl);
const sub = new Redis(redisUrl);
pub.on('error', () => undefined);
sub.on('error', () => undefined);
const connections = new Map<string, WebSocket>();
const agents = new Map<string, string>();
let next = 0;

interface Relayed {
  t: 'task' | 'response';
  conn: string;
  id: number;
  from?: string;
  data?: unknown;
  output?: unknown;
}

void sub.subscribe(`relay:${relayId}`);
sub.on('message', (_channel: string, raw: string) => {
  const m = JSON.parse(raw) as Relayed;
  const ws = connections.get(m.conn);
  if (!ws) return;
  ws.send(
    JSON.stringify(
      m.t === 'task'
        ? { t: 'task', id: m.id, from: m.from, data: m.data }
        : { t: 'response', id: m.id, output: m.output },
    ),
  );
});

const wss = new WebSocketServer({ port: Number(port), perMessageDeflate: false });
wss.on('connection', (ws) => {
  const connId = `${relayId}|${next++}`;
  connections.set(connId, ws);
  ws.on('close', () => connections.delete(connId));
  ws.on('message', async (raw) => {
    const m = JSON.parse(String(raw)) as {
      t: string;
      id: number;
      name?: string;
      agent?: string;
      from?: string;
      data?: unknown;
      output?: unknown;
    };
    if (m.t === 'register') {
      await pub.hset('agents', m.name!, connId);
      ws.send(JSON.stringify({ t: 'registered' }));
    } else if (m.t === 'request') {
      let target = agents.get(m.agent!);
      if (!target) {
        target = (await pub.hget('agents', m.agent!)) ?? '';
        agents.set(m.agent!, target);
      }
      const relay = target.split('|')[0];
      void pub.publish(
        `relay:${relay}`,
        JSON.stringify({ t: 'task', conn: target, id: m.id, from: connId, data: m.data }),
      );
    } else if (m.t === 'result') {
      const relay = m.from!.split('|')[0];
      void pub.publish(`relay:${relay}`, JSON.stringify({ t: 'response', conn: m.from, id: m.id, output: m.output }));
    }
  });
});
