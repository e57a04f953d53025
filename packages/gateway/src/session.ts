import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { CallLimits, Principal } from '@openclaw/core';
import { CloseCode, type ServerFrame } from '@openclaw/protocol';
import type WebSocket from 'ws';
import { TokenBucket } from './token-bucket';

/** Options of {@link Session}. */
export interface SessionOptions {
  /** The session id (the connection slot taken at upgrade); random if absent. */
  id?: string;
  maxBufferedBytes: number;
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  /** Called when the gateway closes the socket, with the code. */
  onClose?: (code: number) => void;
}

/**
 * One WebSocket connection: its principal, its agent instances, its limits. Writes go through
 * {@link Session.send}, which closes a consumer that cannot keep up (1013) instead of buffering
 * without bound.
 */
export class Session {
  readonly id: string;
  readonly principal: Principal;
  readonly socket: WebSocket;
  readonly connectedAt = Date.now();
  /** Instances this connection registered: instance id to agent name. */
  readonly instances = new Map<string, string>();
  /** `coordinator` calls from this connection not answered yet. */
  inFlight = 0;
  /** Requests of any action being handled (started, not answered yet). */
  handling = 0;
  /**
   * Told to leave by a draining replica: new requests are refused, and the connection is closed (1001)
   * once what it has in hand is done.
   */
  leaving = false;
  /** Task ids of this connection's in-flight `coordinator` calls, by request id (for cancel by `requestId`). */
  readonly callsByRequestId = new Map<string | number, string>();
  /** Pings sent without a pong since. */
  missedPongs = 0;
  /** Live `task.subscribe` watches. */
  subscriptions = 0;
  private readonly bucket: TokenBucket;
  private readonly maxBufferedBytes: number;
  private readonly onClose: ((code: number) => void) | undefined;
  private closed = false;
  private sentCode: number | undefined;

  /** Cluster-wide call limits of the principal, worked out once at connection. */
  readonly limits: CallLimits;

  constructor(socket: WebSocket, principal: Principal, limits: CallLimits, options: SessionOptions) {
    this.socket = socket;
    this.principal = principal;
    this.limits = limits;
    this.id = options.id ?? randomUUID();
    this.maxBufferedBytes = options.maxBufferedBytes;
    this.bucket = new TokenBucket(options.rateLimitPerSecond, options.rateLimitBurst);
    this.onClose = options.onClose;
  }

  /** Whether writes are held until the end of this turn ({@link cork}). */
  private corked = false;

  /** Whether the gateway has begun closing this connection (requests arriving now are not handled). */
  get closing(): boolean {
    return this.closed;
  }

  /**
   * The close code the gateway sent (or 1006 when it dropped the connection without a closing
   * handshake); undefined while open, or when the peer closed first. ws reports the peer's code, or
   * 1006 when the peer's close frame never arrives, which is not what the gateway decided.
   */
  get closeCode(): number | undefined {
    return this.sentCode;
  }

  /** Whether frames can still be sent. */
  get open(): boolean {
    return !this.closed && this.socket.readyState === this.socket.OPEN;
  }

  /** Takes a request token. @returns 0, or ms until the next request is allowed. */
  takeToken(): number {
    return this.bucket.take();
  }

  /** Sends a frame; closes with 1013 if the peer has let too much queue up. */
  send(frame: ServerFrame): void {
    if (this.open) this.sendJson(JSON.stringify(frame));
  }

  /** Sends a frame that is JSON text already (an event as it was published); as {@link send}. */
  sendJson(json: string): void {
    if (!this.open) return;
    if (this.socket.bufferedAmount > this.maxBufferedBytes) {
      this.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer: outbound buffer limit exceeded');
      return;
    }
    this.cork();
    this.socket.send(json);
  }

  /**
   * Holds the socket's writes until the current turn of the event loop ends, so the frames sent in
   * it (the answers to many calls whose replies came in one read from Redis) leave in one write.
   */
  private cork(): void {
    if (this.corked) return;
    const raw = (this.socket as unknown as { _socket?: Socket })._socket;
    if (!raw || raw.writableCorked > 0) return;
    this.corked = true;
    raw.cork();
    process.nextTick(() => {
      this.corked = false;
      raw.uncork();
    });
  }

  /** Closes the socket with a code and reason. Idempotent. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.sentCode = code;
    this.onClose?.(code);
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
      this.socket.close(code, reason);
      // A peer that never completes the closing handshake must not hold the socket forever.
      setTimeout(() => this.socket.terminate(), 5000).unref();
    }
  }

  /**
   * Records that ws closed the socket itself, with `code`, for a frame that broke the protocol or a
   * limit (1009 for an oversize frame). Idempotent.
   */
  closedByProtocol(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.sentCode = code;
    this.onClose?.(code);
  }

  /** Drops the connection without a closing handshake (dead peer). */
  terminate(): void {
    this.closed = true;
    this.sentCode ??= 1006;
    this.socket.terminate();
  }
}

/**
 * The close code ws sent for one of its protocol errors (its `WS_ERR_*` codes), or undefined for an
 * error that is not one.
 */
export function protocolCloseCode(error: Error): number | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('WS_ERR_')) return undefined;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH')
    return CloseCode.FRAME_TOO_LARGE;
  if (code === 'WS_ERR_INVALID_UTF8') return 1007;
  if (code === 'WS_ERR_TOO_MANY_BUFFERED_PARTS') return CloseCode.POLICY;
  return 1002;
}
