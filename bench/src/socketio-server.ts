// The peer: Socket.IO 4 with @socket.io/redis-adapter doing the benchmark's exchange. An agent joins
// the room `agent:<name>`; a caller's `request` goes to that room through the adapter, and the agent's
// `result` goes back to the caller's socket id the same way. Websocket transport only.
// Usage: node socketio-server.js <port> <redisUrl>
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import Redis from 'ioredis';
import { Server } from 'socket.io';

const [port, redisUrl] = process.argv.slice(2) as [string, string];
const pub = new Redis(redisUrl);
const sub = pub.duplicate();
pub.on('error', () => undefined);
sub.on('error', () => undefined);

interface RequestMessage {
  id: number;
  agent: string;
  data: unknown;
}

interface ResultMessage {
  id: number;
  from: string;
  output: unknown;
}

const http = createServer();
const io = new Server(http, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  adapter: createAdapter(pub, sub),
});
io.on('connection', (socket) => {
  socket.on('register', (name: string, ack?: (ok: boolean) => void) => {
    void socket.join(`agent:${name}`);
    ack?.(true);
  });
  socket.on('request', (m: RequestMessage) => {
    io.to(`agent:${m.agent}`).emit('task', { id: m.id, from: socket.id, data: m.data });
  });
  socket.on('result', (m: ResultMessage) => {
    io.to(m.from).emit('response', { id: m.id, output: m.output });
  });
});
http.listen(Number(port), '127.0.0.1');

// Never outlive the benchmark: it holds the other end of the IPC channel.
process.on('disconnect', () => process.exit(0));
// A clean exit on SIGTERM, so that a server under --cpu-prof writes its profile.
process.on('SIGTERM', () => process.exit(0));
