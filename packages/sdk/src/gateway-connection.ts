import type { IncomingMessage } from 'node:http';
import {
  CloseCode,
  type ErrorCode,
  type HelloResult,
  HelloResultSchema,
  PROTOCOL_VERSION,
  WireErrorSchema,
} from '@openclaw/protocol';
import WebSocket from 'ws';
import { backoffCap, backoffDelay } from './backoff';
import type { ClientEventSink, ClientState } from './client-events';
import type { ResolvedClientOptions } from './client-options';
import { GatewayError, UnexpectedFrameError } from './errors';
import { parseResult } from './result-parsing';
import { clampTimer } from './timer';
import { SDK_VERSION } from './version';

/** How long `close()` waits for the gateway to acknowledge the close frame before dropping the socket. */
const CLOSE_HANDSHAKE_MS = 1_000;
/** The largest upgrade-refusal body read for its error message. */
const MAX_REFUSAL_BODY = 16 * 1024;
/** A connection that lasted less than this before it dropped was flapping: the backoff goes on from where it was. */
const STABLE_CONNECTION_MS = 10_000;
/** After 1013 (overloaded), reconnection starts this many steps up the backoff. */
const OVERLOAD_BACKOFF_STEPS = 3;
/** The longest `Retry-After` honoured, so a bad header cannot park a client for hours. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/** @internal What a {@link GatewayConnection} asks of the client it belongs to. */
export interface ConnectionHooks {
  /** Sends a request on the connection being set up (its `hello`) and resolves with the result. */
  request(action: string, params: Record<string, unknown>): Promise<unknown>;
  /** On a reconnection, after `hello`: registers the agents again; rejects only when a retry can fix a refusal. */
  reregister(): Promise<void>;
  /** A response frame arrived (a JSON object with `ok`). */
  onResponse(frame: object, text: string): void;
  /** An event frame arrived (a JSON object with `event`). */
  onEvent(frame: Record<string, unknown>, text: string): void;
  /** The connection is established, just before `'connected'` is emitted. */
  onConnected(): void;
  /** The socket closed (before `'disconnected'`): what was in flight on it ends. */
  onSocketClosed(code: number, reason: string, byClient: boolean): void;
  /** `close()` closed the socket (before `'closed'`): what is still pending ends. */
  onClientClosed(): void;
}

/**
 * @internal The WebSocket of a {@link GatewayClient} and its life: opening with the credentials, the
 * handshake (`hello`, re-registration), liveness, reconnection with backoff, and closing. Emits the
 * client's `'connected'`, `'disconnected'`, `'reconnecting'` and `'closed'`; hands the frames it receives
 * to its hooks.
 *
 * States: `idle` until `start()`, `connecting` during the first connection, `connected`, `reconnecting`
 * from an unexpected close until the next connection is established, and `closed` for good (after
 * `close()`, a failed first connection, a close it must not reconnect after, or exhausted attempts).
 */
export class GatewayConnection {
  private currentState: ClientState = 'idle';
  private currentSession: HelloResult | undefined;
  /** The open socket, from its `open` event (handshake included) until its `close` event. */
  private socket: WebSocket | undefined;
  /** A socket still in its opening handshake, so `close()` can abort it. */
  private opening: WebSocket | undefined;
  /** Whether `socket` finished its handshake and `'connected'` was emitted for it. */
  private established = false;
  private lastClose: { code: number; reason: string } | undefined;
  private livenessTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private finished = false;
  /** Waiters for the connection to be back, or closed for good (see {@link onceSettled}). */
  private readonly reconnectWaits = new Set<() => void>();
  /** When the current connection was established (for telling a stable connection from a flapping one). */
  private connectedAt = 0;
  /** The backoff step at which the last reconnection succeeded. */
  private lastReconnectStep = -1;

  constructor(
    private readonly options: ResolvedClientOptions,
    private readonly hooks: ConnectionHooks,
    private readonly events: ClientEventSink,
  ) {}

  /** Where the connection is in its life. */
  get state(): ClientState {
    return this.currentState;
  }

  /** The `hello` result of the current connection; undefined before the first, or when `hello` is off. */
  get session(): HelloResult | undefined {
    return this.currentSession;
  }

  /** Whether a socket is open to send on (during the handshake too). */
  get isOpen(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Opens the first connection; if it fails, the connection is closed for good. Idempotent. */
  start(): Promise<void> {
    this.starting ??= this.establish(false).catch((error: unknown) => {
      this.finish('the first connection failed');
      throw error;
    });
    return this.starting;
  }

  /** Closes for good: stops reconnecting and closes the socket. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Sends a text frame on the open socket; `callback` gets the error of a frame that could not be sent. */
  send(text: string, callback: (error?: Error) => void): void {
    if (!this.socket) {
      callback(new Error('the connection is closed'));
      return;
    }
    this.socket.send(text, callback);
  }

  /**
   * Calls `listener` once the connection is established again or closed for good, whichever comes first.
   * @returns its removal (idempotent).
   */
  onceSettled(listener: () => void): () => void {
    this.reconnectWaits.add(listener);
    return () => this.reconnectWaits.delete(listener);
  }

  /** Opens a socket and runs the handshake (hello, then re-registration); resolves once `'connected'` is emitted. */
  private async establish(reconnecting: boolean): Promise<void> {
    if (this.closing) throw clientClosedError();
    this.currentState = reconnecting ? 'reconnecting' : 'connecting';
    const socket = await this.openSocket();
    if (this.closing) {
      socket.terminate();
      throw clientClosedError();
    }
    this.attach(socket);
    try {
      let session: HelloResult | undefined;
      if (this.options.hello) {
        session = parseResult(
          HelloResultSchema,
          await this.hooks.request('hello', {
            protocol: PROTOCOL_VERSION,
            client: { name: this.options.clientName, version: SDK_VERSION },
          }),
          'hello',
        );
        // Set before re-registration, whose frames are held to this connection's limits.
        this.currentSession = session;
      }
      if (reconnecting) await this.hooks.reregister();
      if (this.socket !== socket || socket.readyState !== WebSocket.OPEN) {
        throw new GatewayError('UNAVAILABLE', 'the connection closed during its handshake', { retryable: true });
      }
      this.established = true;
      this.currentState = 'connected';
      this.connectedAt = Date.now();
      this.armLiveness();
      this.releaseReconnectWaits();
      this.hooks.onConnected();
      this.events.emit('connected', { session, reconnected: reconnecting });
    } catch (error) {
      socket.terminate();
      if (this.closing) throw clientClosedError();
      if (this.lastClose?.code === CloseCode.POLICY) {
        throw new GatewayError('UNAUTHENTICATED', `the gateway closed the connection (1008 ${this.lastClose.reason})`, {
          retryable: false,
          cause: error,
        });
      }
      throw error;
    }
  }

  /** A socket that has opened, or a rejection: `UNAUTHENTICATED` / `FORBIDDEN` / ... from an HTTP refusal, else `UNAVAILABLE`. */
  private openSocket(): Promise<WebSocket> {
    return new Promise<WebSocket>((resolve, reject) => {
      const headers: Record<string, string> = {};
      if (this.options.token !== undefined) headers.Authorization = `Bearer ${this.options.token}`;
      if (this.options.apiKey !== undefined) headers['X-API-Key'] = this.options.apiKey;
      const socket = new WebSocket(this.options.url, { headers, handshakeTimeout: this.options.connectTimeoutMs });
      this.opening = socket;
      let refusal: GatewayError | undefined;
      let failure: Error | undefined;

      socket.on('unexpected-response', (_request, response) => {
        readRefusal(response).then((error) => {
          refusal = error;
          socket.terminate();
        });
      });
      // ws emits 'error' without a listener as an uncaught exception; every socket keeps this one for life.
      socket.on('error', (error) => {
        if (socket === this.socket) this.events.reportError(error);
        else failure = error;
      });
      socket.once('open', () => {
        this.opening = undefined;
        socket.off('close', onCloseBeforeOpen);
        resolve(socket);
      });
      const onCloseBeforeOpen = (): void => {
        this.opening = undefined;
        if (refusal) {
          reject(refusal);
          return;
        }
        const why = failure?.message ?? 'the connection closed during the opening handshake';
        reject(
          new GatewayError('UNAVAILABLE', `cannot connect to ${redactUrl(this.options.url)}: ${why}`, {
            retryable: true,
            cause: failure,
          }),
        );
      };
      socket.once('close', onCloseBeforeOpen);
    });
  }

  private attach(socket: WebSocket): void {
    this.socket = socket;
    this.established = false;
    this.lastClose = undefined;
    socket.on('message', (data, isBinary) => {
      if (socket === this.socket) this.onMessage(data, isBinary);
    });
    // ws answers the gateway's pings by itself; they only prove the connection is alive.
    socket.on('ping', () => {
      if (socket === this.socket) this.armLiveness();
    });
    socket.once('close', (code, reason) => this.onSocketClose(socket, code, reason.toString()));
  }

  /** Decodes a frame and hands it on by kind; what cannot be used is reported, and the connection stays. */
  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    this.armLiveness();
    const text = rawToString(data);
    if (isBinary) {
      this.events.reportError(new UnexpectedFrameError('the gateway sent a binary frame', text));
      return;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch (error) {
      this.events.reportError(
        new UnexpectedFrameError('the gateway sent a frame that is not JSON', text, { cause: error }),
      );
      return;
    }
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      this.events.reportError(new UnexpectedFrameError('the gateway sent a frame that is not a JSON object', text));
    } else if ('ok' in frame) {
      this.hooks.onResponse(frame, text);
    } else if ('event' in frame) {
      this.hooks.onEvent(frame as Record<string, unknown>, text);
    } else {
      this.events.reportError(
        new UnexpectedFrameError('the gateway sent a frame that is neither a response nor an event', text),
      );
    }
  }

  private onSocketClose(socket: WebSocket, code: number, reason: string): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    this.lastClose = { code, reason };
    this.disarmLiveness();
    const wasEstablished = this.established;
    this.established = false;
    const byClient = this.closing !== undefined;
    this.hooks.onSocketClosed(code, reason, byClient);
    // A connection that dies during its handshake is establish()'s to report.
    if (!wasEstablished) return;

    const willReconnect = !byClient && this.options.reconnect !== false && shouldReconnect(code);
    this.events.emit('disconnected', { code, reason, willReconnect });
    if (willReconnect) {
      this.reconnect(code).catch((error: unknown) => this.events.reportError(error));
    } else if (!byClient) {
      this.finish(
        this.options.reconnect === false
          ? `the connection closed (${code}) and reconnection is off`
          : `the gateway closed the connection with ${code}`,
      );
    }
  }

  /**
   * Reconnects with exponential backoff and full jitter. It backs off harder when the gateway says it
   * is overloaded: after 1013 (too slow, or too many connections) it starts three steps up the backoff
   * with at least half the step's cap; after a refused upgrade that names a `retryAfterMs` (503 at a
   * replica's connection cap, 429 during a lockout) it waits that long, plus the usual jitter.
   */
  private async reconnect(closeCode?: number): Promise<void> {
    const policy = this.options.reconnect;
    if (policy === false) return;
    this.currentState = 'reconnecting';
    let lastError: unknown;
    // A connection that dropped soon after it was made (a gateway that accepts and then fails, a
    // proxy cutting it) does not start the backoff over: the next wait is a step longer than the last.
    const flapping = Date.now() - this.connectedAt < STABLE_CONNECTION_MS;
    const carried = flapping ? this.lastReconnectStep + 1 : 0;
    const overload = closeCode === CloseCode.TRY_AGAIN_LATER ? OVERLOAD_BACKOFF_STEPS : 0;
    const start = Math.max(carried, overload);
    for (let attempt = 0; attempt < policy.maxAttempts; attempt++) {
      const step = attempt + start;
      const retryAfterMs = lastError instanceof GatewayError ? lastError.retryAfterMs : undefined;
      const delayMs =
        retryAfterMs !== undefined
          ? retryAfterMs + backoffDelay(step, policy)
          : overload > 0
            ? Math.floor(backoffCap(step, policy) / 2) + Math.floor(backoffDelay(step, policy) / 2)
            : backoffDelay(step, policy);
      this.events.emit('reconnecting', { attempt: attempt + 1, delayMs, lastError });
      await this.sleep(delayMs);
      if (this.closing) return;
      try {
        await this.establish(true);
        this.lastReconnectStep = step;
        return;
      } catch (error) {
        if (this.closing) return;
        lastError = error;
        if (error instanceof GatewayError && (error.code === 'UNAUTHENTICATED' || error.code === 'FORBIDDEN')) {
          this.events.reportError(error);
          this.finish(`the gateway refused the credentials (${error.code})`);
          return;
        }
      }
    }
    this.events.reportError(
      new GatewayError('UNAVAILABLE', `gave up reconnecting after ${policy.maxAttempts} attempts`, {
        retryable: true,
        cause: lastError,
      }),
    );
    this.finish(`gave up reconnecting after ${policy.maxAttempts} attempts`);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, clampTimer(ms));
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /**
   * The gateway pings every `heartbeatMs`; a connection that has shown no sign of life (ping or frame) for
   * 2.5 of them is dead without a close (a vanished NAT entry, a frozen replica), and is dropped to reconnect.
   */
  private armLiveness(): void {
    const heartbeatMs = this.currentSession?.limits.heartbeatMs;
    const socket = this.socket;
    if (!this.established || !socket || heartbeatMs === undefined || heartbeatMs <= 0) return;
    if (this.livenessTimer !== undefined) {
      this.livenessTimer.refresh();
      return;
    }
    // Cleared when this socket closes, so the closure never outlives it.
    this.livenessTimer = setTimeout(() => socket.terminate(), clampTimer(heartbeatMs * 2.5));
  }

  private disarmLiveness(): void {
    if (this.livenessTimer !== undefined) clearTimeout(this.livenessTimer);
    this.livenessTimer = undefined;
  }

  private async shutdown(): Promise<void> {
    this.wake?.();
    this.opening?.terminate();
    const socket = this.socket;
    if (socket) {
      await new Promise<void>((resolve) => {
        const fallback = setTimeout(() => socket.terminate(), CLOSE_HANDSHAKE_MS);
        socket.once('close', () => {
          clearTimeout(fallback);
          resolve();
        });
        socket.close(CloseCode.NORMAL, 'client closing');
      });
    }
    this.hooks.onClientClosed();
    this.finish('closed by the client');
  }

  /** The client will not connect again: emits `'closed'` once. */
  private finish(reason: string): void {
    this.disarmLiveness();
    this.currentState = 'closed';
    if (this.finished) return;
    this.finished = true;
    this.releaseReconnectWaits();
    this.events.emit('closed', { code: this.lastClose?.code, reason });
  }

  /** Lets those waiting for the connection go on: it is back, or will never be. */
  private releaseReconnectWaits(): void {
    const waits = [...this.reconnectWaits];
    this.reconnectWaits.clear();
    for (const release of waits) this.events.guard(release);
  }
}

/** Whether to reconnect after the gateway or the network closed an established connection with `code`. */
function shouldReconnect(code: number): boolean {
  // Beyond the codes the protocol names as transient (RECONNECTABLE_CLOSE_CODES: 1001, 1006, 1011, 1012,
  // 1013), any other close the client did not ask for (1000 or 1005 from a replica shutting down, 1009
  // after an oversized frame) is also cured by a fresh connection. Only 1008 means the credentials are
  // no longer good, and reconnecting with them would be refused again.
  return code !== CloseCode.POLICY;
}

function clientClosedError(): GatewayError {
  return new GatewayError('UNAVAILABLE', 'the client was closed', { retryable: false });
}

/** The gateway refused the upgrade: its JSON error if it sent one, else an error for the HTTP status. */
async function readRefusal(response: IncomingMessage): Promise<GatewayError> {
  const status = response.statusCode ?? 0;
  const retryAfter = retryAfterHeaderMs(response.headers['retry-after']);
  const body = await new Promise<string>((resolve) => {
    let text = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > MAX_REFUSAL_BODY) response.destroy();
    });
    response.on('error', () => resolve(text));
    response.on('close', () => resolve(text));
    response.on('end', () => resolve(text));
  });
  try {
    const wire = WireErrorSchema.partial({ retryable: true }).safeParse(
      (JSON.parse(body) as { error?: unknown }).error,
    );
    if (wire.success) {
      const code = wire.data.code as ErrorCode;
      return new GatewayError(code, wire.data.message, {
        retryable: wire.data.retryable,
        retryAfterMs: wire.data.retryAfterMs ?? retryAfter,
        details: wire.data.details ?? { httpStatus: status },
      });
    }
  } catch {
    // Not JSON (a proxy's error page): fall back to the status and the Retry-After header.
  }
  const code: ErrorCode =
    status === 401 ? 'UNAUTHENTICATED' : status === 403 ? 'FORBIDDEN' : status === 429 ? 'RATE_LIMITED' : 'UNAVAILABLE';
  return new GatewayError(code, `the gateway refused the connection (HTTP ${status})`, {
    retryable: code === 'UNAVAILABLE' || code === 'RATE_LIMITED',
    retryAfterMs: retryAfter,
    details: { httpStatus: status },
  });
}

/**
 * @internal A `Retry-After` header in milliseconds (delay-seconds or an HTTP date), at most five minutes;
 * undefined when absent or unreadable.
 */
export function retryAfterHeaderMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^[+-]?\d+$/.test(text) && !/^\d+$/.test(text)) return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

/** The URL without its query, which may carry `api_key` / `access_token`, and without user info. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

function rawToString(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
