/** A wire error, as the gateway sends it. */
export interface WireError {
  code: string;
  message: string;
  retryable: boolean;
  retryAfterMs?: number;
  details?: unknown;
}

/** A request the gateway refused. */
export class RequestError extends Error {
  constructor(readonly wire: WireError) {
    super(wire.message);
  }
}

type Frame = Record<string, unknown>;

export interface ConnectionHandlers {
  /** Connected (again): subscriptions must be made anew. */
  open(): void;
  event(frame: Frame): void;
  /** Lost; `retryInMs` until the next attempt, or undefined when it will not retry (credentials revoked). */
  down(reason: string, retryInMs: number | undefined): void;
}

const REQUEST_TIMEOUT_MS = 15_000;

/**
 * The dashboard's one WebSocket to the gateway. Requests are matched to responses by id and fail
 * after 15 s rather than wait forever; the socket reconnects by itself with jittered backoff (after
 * 1001 draining, 1006 and 1013 alike), except after 1008: revoked credentials are not retried.
 */
export class Connection {
  private socket: WebSocket | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: number }>();
  private attempts = 0;
  private retryTimer: number | undefined;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly handlers: ConnectionHandlers,
  ) {}

  start(): void {
    this.closed = false;
    this.open();
  }

  /** Closes for good (sign out). */
  close(): void {
    this.closed = true;
    window.clearTimeout(this.retryTimer);
    this.socket?.close(1000);
    this.failPending('signed out');
  }

  request<T = unknown>(action: string, params: Frame = {}): Promise<T> {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(
        new RequestError({ code: 'UNAVAILABLE', message: 'not connected to the gateway', retryable: true }),
      );
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestError({ code: 'TIMEOUT', message: `no answer to ${action} in 15 s`, retryable: true }));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      socket.send(JSON.stringify({ ...params, action, id }));
    });
  }

  private open(): void {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.attempts = 0;
      this.handlers.open();
    });
    socket.addEventListener('message', (message) => {
      let frame: Frame;
      try {
        frame = JSON.parse(String(message.data)) as Frame;
      } catch {
        return;
      }
      if ('ok' in frame) this.settle(frame);
      else if (typeof frame.event === 'string') this.handlers.event(frame);
    });
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.failPending('the connection closed');
      if (this.closed) return;
      if (event.code === 1008) {
        this.handlers.down('the gateway closed the session: the credentials were revoked or expired', undefined);
        return;
      }
      // Full jitter over an exponential ceiling: 0.5 s, 1 s, 2 s ... up to 15 s.
      const ceiling = Math.min(15_000, 500 * 2 ** this.attempts);
      const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
      this.attempts += 1;
      this.handlers.down(closeReason(event.code), delay);
      this.retryTimer = window.setTimeout(() => this.open(), delay);
    });
  }

  private settle(frame: Frame): void {
    const id = typeof frame.id === 'number' ? frame.id : undefined;
    const waiting = id === undefined ? undefined : this.pending.get(id);
    if (!waiting || id === undefined) return;
    this.pending.delete(id);
    window.clearTimeout(waiting.timer);
    if (frame.ok === true) waiting.resolve(frame.result);
    else waiting.reject(new RequestError(frame.error as WireError));
  }

  private failPending(why: string): void {
    for (const [id, waiting] of this.pending) {
      window.clearTimeout(waiting.timer);
      waiting.reject(new RequestError({ code: 'UNAVAILABLE', message: why, retryable: true }));
      this.pending.delete(id);
    }
  }
}

function closeReason(code: number): string {
  if (code === 1001) return 'the replica is draining';
  if (code === 1013) return 'the gateway is overloaded or this page fell behind';
  return 'the connection was lost';
}
