import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type WebSocket from 'ws';
import { WebSocketServer } from 'ws';
import type { GatewayClientEvents } from '../client-events';
import type { GatewayClient } from '../gateway-client';

/** A frame a client sent, as parsed. */
export type ClientFrame = Record<string, unknown> & { action: string; id?: number | string };

/** Answers one action; the default for `hello`, `register` and `ping` answers like a gateway. */
export type ActionScript = (frame: ClientFrame, connection: FakeConnection) => void;

/** Options of {@link FakeGateway.start}. */
export interface FakeGatewayOptions {
  /** Accept only this credential, as `X-API-Key` or `Authorization: Bearer`; others get HTTP 401. */
  apiKey?: string;
  /** Advertised in `hello`. Default 0 (no liveness check in the client). */
  heartbeatMs?: number;
  /** Advertised in `hello`. Default 1 MiB. */
  maxFrameBytes?: number;
}

/**
 * One client connection to the {@link FakeGateway}. Tests read what the client sent with {@link next} and
 * answer with {@link ok} / {@link fail} / {@link send}.
 */
export class FakeConnection {
  readonly frames: ClientFrame[] = [];
  private readonly taken = new Set<ClientFrame>();
  private readonly waiters: { action: string; resolve: (frame: ClientFrame) => void }[] = [];

  constructor(
    readonly socket: WebSocket,
    readonly request: IncomingMessage,
  ) {}

  /** Called by the gateway for each frame received. */
  receive(frame: ClientFrame): void {
    this.frames.push(frame);
    const index = this.waiters.findIndex((waiter) => waiter.action === frame.action);
    const waiter = this.waiters[index];
    if (waiter) {
      this.waiters.splice(index, 1);
      this.taken.add(frame);
      waiter.resolve(frame);
    }
  }

  /** The next frame of `action` not yet returned by `next`, waiting for it if need be. */
  next(action: string): Promise<ClientFrame> {
    const frame = this.frames.find((candidate) => candidate.action === action && !this.taken.has(candidate));
    if (frame) {
      this.taken.add(frame);
      return Promise.resolve(frame);
    }
    return new Promise((resolve) => this.waiters.push({ action, resolve }));
  }

  /** Frames of `action` received so far. */
  all(action: string): ClientFrame[] {
    return this.frames.filter((frame) => frame.action === action);
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  ok(frame: ClientFrame, result: unknown): void {
    this.send({ id: frame.id ?? null, ok: true, result });
  }

  fail(frame: ClientFrame, error: Record<string, unknown>): void {
    this.send({ id: frame.id ?? null, ok: false, error });
  }

  close(code: number, reason = ''): void {
    this.socket.close(code, reason);
  }
}

/**
 * A scripted gateway on a real WebSocket server (port 0) that speaks protocol version 1 as far as a test
 * needs: it answers `hello`, `register` and `ping` like the gateway, records every frame, and leaves every
 * other action to the test.
 */
export class FakeGateway {
  readonly connections: FakeConnection[] = [];
  private readonly scripts = new Map<string, ActionScript>();
  private readonly connectionWaiters: ((connection: FakeConnection) => void)[] = [];
  private registrations = 0;
  private closing: Promise<void> | undefined;
  /** The only credential accepted, if set; tests may change it to revoke a client's key. */
  apiKey: string | undefined;
  /** Upgrades to refuse, in order, with this HTTP status and wire error (a replica at its cap, a lockout). */
  readonly refusals: {
    status: number;
    error?: Record<string, unknown>;
    /** Instead of the JSON error: this body (a proxy's error page) and these headers. */
    raw?: { body: string; headers?: Record<string, string> };
  }[] = [];

  private constructor(
    private readonly server: Server,
    private readonly wss: WebSocketServer,
    readonly options: FakeGatewayOptions,
  ) {
    this.apiKey = options.apiKey;
    this.scripts.set('hello', (frame, connection) =>
      connection.ok(frame, {
        protocol: 1,
        sessionId: `session-${this.connections.indexOf(connection) + 1}`,
        replica: 'fake-replica',
        principal: { id: 'anonymous', tenant: 'default', roles: ['admin'] },
        limits: { maxFrameBytes: options.maxFrameBytes ?? 1024 * 1024, heartbeatMs: options.heartbeatMs ?? 0 },
      }),
    );
    this.scripts.set('register', (frame, connection) => {
      this.registrations += 1;
      connection.ok(frame, { agent: frame.name, instanceId: `instance-${this.registrations}` });
    });
    this.scripts.set('ping', (frame, connection) => connection.ok(frame, { pong: true, time: 1_700_000_000_000 }));
  }

  static async start(options: FakeGatewayOptions = {}): Promise<FakeGateway> {
    const server = createServer();
    const wss = new WebSocketServer({ noServer: true });
    const gateway = new FakeGateway(server, wss, options);
    server.on('upgrade', (request, socket, head) => {
      const refusal = gateway.refusals.shift();
      if (refusal) {
        const body = refusal.raw?.body ?? JSON.stringify({ error: refusal.error });
        const headers = Object.entries(refusal.raw?.headers ?? { 'Content-Type': 'application/json' })
          .map(([name, value]) => `${name}: ${value}\r\n`)
          .join('');
        socket.end(
          `HTTP/1.1 ${refusal.status} Refused\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
        return;
      }
      if (gateway.apiKey !== undefined && credentialOf(request) !== gateway.apiKey) {
        const body = JSON.stringify({
          error: { code: 'UNAUTHENTICATED', message: 'missing or invalid credentials', retryable: false },
        });
        socket.end(
          `HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => gateway.accept(ws, request));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return gateway;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Replaces how the gateway answers `action`; `undefined` leaves it to the test. */
  script(action: string, script: ActionScript | undefined): void {
    if (script) this.scripts.set(action, script);
    else this.scripts.delete(action);
  }

  /** The connection number `index` (0-based), waiting for it if need be. */
  connection(index: number): Promise<FakeConnection> {
    const existing = this.connections[index];
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve) => {
      const wait = (connection: FakeConnection): void => {
        if (this.connections.indexOf(connection) === index) resolve(connection);
        else this.connectionWaiters.push(wait);
      };
      this.connectionWaiters.push(wait);
    });
  }

  /** Terminates every connection and closes the server. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: WebSocket, request: IncomingMessage): void {
    const connection = new FakeConnection(socket, request);
    this.connections.push(connection);
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as ClientFrame;
      connection.receive(frame);
      this.scripts.get(frame.action)?.(frame, connection);
    });
    for (const wait of this.connectionWaiters.splice(0)) wait(connection);
  }
}

function credentialOf(request: IncomingMessage): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization?.startsWith('Bearer ')) return authorization.slice('Bearer '.length);
  const key = request.headers['x-api-key'];
  return typeof key === 'string' ? key : undefined;
}

/** Resolves with the first argument of the next `event` the client emits. */
export function nextEvent<K extends keyof GatewayClientEvents>(
  client: GatewayClient,
  event: K,
): Promise<GatewayClientEvents[K][0]> {
  return new Promise((resolve) => {
    const listener = (...args: GatewayClientEvents[K]): void => resolve(args[0]);
    (client.once as (name: K, fn: (...args: GatewayClientEvents[K]) => void) => unknown)(event, listener);
  });
}

/** Waits `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
