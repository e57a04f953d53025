// Socket.IO 4 with @socket.io/redis-adapter doing the benchmark's exchange: a caller's request goes to
// the agent's room through the adapter; the agent's result goes to the caller's socket id the same way.
// Usage: node socketio-server.js <port> <redisUrl>
import { createAdapter } from '@socket.io/redis-adapter';
import Redis from 'ioredis';
import { Server } from 'socket.io';

const [port, redisUrl] = process.argv.slice(2) as [string, string];
const pub = new Redis(redisUrl);
const sub = pub.duplicate();
pub.on('error', () => undefined);
sub.on('error', () => undefined);

const io = new Server({ transports: ['websocket'], serveClient: false, adapter: createAdapter(pub, sub) });
io.on('connection', (socket) => {
  socket.on('register', (name: string, ack?: (ok: boolean) => void) => {
    void socket.join(`agent:${name}`);
    ack?.(true);
  });
  socket.on('request', (m: { id: number; agent: string; data: unknown }) => {
    io.to(`agent:${m.agent}`).emit('task', { id: m.id, from: socket.id, data: m.data });
  });
  socket.on('result', (m: { id: number; from: string; output: unknown }) => {
    io.to(m.from).emit('response', { id: m.id, output: m.output });
  });
});
io.listen(Number(port));
