import type { IncomingHttpHeaders } from 'node:http';
import WebSocket, { type RawData } from 'ws';

/** A frame received from the gateway, parsed: one JSON object. */
export type Frame = Record<string, unknown>;

/** A response frame: it has a boolean `ok` (PROTOCOL.md, Frames). */
export type ResponseFrame = Frame & { ok: boolean };

/** An event frame: it has a string `event`. */
export type EventFrame = Frame & { event: string };

/** How a WebSocket closed: the close code and reason received (1006 if there was no close frame). */
export interface CloseInfo {
  /** Close code, e.g. 1000, 1008 or 1009. */
  code: number;
  /** Close reason as text (empty if none). */
  reason: string;
}

/** Options for {@link TestSocket.open}. */
export interface TestSocketOptions {
  /** Extra headers on the upgrade request, e.g. `{ authorization: 'Bearer ...' }` or `{ 'x-api-key': ... }`. */
  headers?: Readonly<Record<string, string>>;
  /** The `Origin` header, as a browser would send it. */
  origin?: string;
  /** How long the upgrade may take, in milliseconds. Default 5 000. */
  timeoutMs?: number;
  /** Answer server pings automatically. Default true; false simulates a peer that stopped responding. */
  autoPong?: boolean;
}

/** The server answered the upgrade request with an HTTP response instead of switching protocols. */
export class UpgradeRejectedError extends Error {
  override name = 'UpgradeRejectedError';

  constructor(
    /** HTTP status of the response, e.g. 401 or 403. */
    readonly status: number,
    /** Response body as text. */
    readonly body: string,
    /** Response headers. */
    readonly headers: IncomingHttpHeaders,
  ) {
    super(`WebSocket upgrade rejected with HTTP ${status}: ${body.slice(0, 500)}`);
  }

  /** The body parsed as JSON, or `undefined` if it is not JSON. */
  get json(): unknown {
    try {
      return JSON.parse(this.body);
    } catch {
      return undefined;
    }
  }
}

interface Waiter {
  accepts: (frame: Frame) => boolean;
  what: string;
  resolve: (frame: Frame) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A WebSocket client for raw-frame tests: sends exactly what it is given, and buffers every frame
 * it receives so that a test can await them in any order without losing one that arrived early.
 *
 * Each `next*` call takes the first buffered (or next arriving) frame that matches and removes it
 * from the buffer; frames that match nothing stay there (see `pending()`). A wait rejects at its
 * timeout, or as soon as the socket closes, naming what it awaited and the unmatched frames.
 *
 * @example
 * ```ts
 * const socket = await TestSocket.open(gateway.url, { headers: { 'x-api-key': key } });
 * const hello = await socket.request({ action: 'hello', id: 1 });
 * expect(hello).toMatchObject({ id: 1, ok: true, result: { protocol: 1 } });
 * socket.send('not json');
 * expect(await socket.nextResponse()).toMatchObject({ id: null, ok: false, error: { code: 'BAD_REQUEST' } });
 * await socket.close();
 * ```
 */
export class TestSocket {
  /** Resolves when the socket has closed, with the code and reason. Never rejects. */
  readonly closed: Promise<CloseInfo>;
  private readonly queue: Frame[] = [];
  private readonly unparsed: (string | Buffer)[] = [];
  private readonly waiters: Waiter[] = [];
  private closeInfo: CloseInfo | undefined;
  private lastError: Error | undefined;

  private constructor(
    /** The underlying `ws` client, for what this class does not cover (pings, `bufferedAmount`). */
    readonly raw: WebSocket,
  ) {
    raw.on('message', (data, isBinary) => this.receive(data, isBinary));
    // Without a listener an 'error' (e.g. ECONNRESET) would be thrown; 'close' follows it.
    raw.on('error', (error) => {
      this.lastError = error;
    });
    this.closed = new Promise((resolve) => {
      raw.once('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        for (const waiter of this.waiters.splice(0)) {
          clearTimeout(waiter.timer);
          waiter.reject(new Error(`${this.describeClose()} while waiting for ${waiter.what}${this.describePending()}`));
        }
        resolve(this.closeInfo);
      });
    });
  }

  /**
   * Opens a WebSocket to `url` and resolves once it is open. Rejects with an
   * {@link UpgradeRejectedError} (carrying `status` and `body`) if the server answers the upgrade
   * with an HTTP error, or with the connection error.
   */
  static open(url: string, options: TestSocketOptions = {}): Promise<TestSocket> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    const raw = new WebSocket(url, {
      headers: { ...options.headers },
      handshakeTimeout: timeoutMs,
      perMessageDeflate: false,
      autoPong: options.autoPong ?? true,
      ...(options.origin === undefined ? {} : { origin: options.origin }),
    });
    // Listening from the start, so frames sent right after the upgrade are buffered too.
    const socket = new TestSocket(raw);
    return new Promise((resolve, reject) => {
      raw.once('open', () => resolve(socket));
      raw.once('unexpected-response', (_request, response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('end', () => {
          reject(
            new UpgradeRejectedError(
              response.statusCode ?? 0,
              Buffer.concat(chunks).toString('utf8'),
              response.headers,
            ),
          );
          // Aborts the request and frees its socket; 'error' and 'close' follow and are absorbed.
          raw.terminate();
        });
      });
      void socket.closed.then(() => {
        const cause = socket.lastError;
        reject(new Error(`could not open ${url}: ${cause?.message ?? socket.describeClose()}`, { cause }));
      });
    });
  }

  /** Sends a text frame: a string exactly as given (malformed JSON included), anything else as JSON. */
  send(frame: string | object): void {
    this.write(typeof frame === 'string' ? frame : JSON.stringify(frame), false);
  }

  /** Sends a binary frame. */
  sendBinary(data: Uint8Array | ArrayBuffer): void {
    this.write(data, true);
  }

  /**
   * Sends `frame` exactly as given and resolves with its response: the one echoing its `id`, or, if
   * it has none, the next response whose `id` is null or absent.
   */
  async request(frame: Frame, timeoutMs = 5_000): Promise<ResponseFrame> {
    const id = frame.id;
    const matches =
      id === undefined
        ? (response: ResponseFrame) => response.id === null || response.id === undefined
        : (response: ResponseFrame) => response.id === id;
    const what = `the response to ${JSON.stringify(frame).slice(0, 200)}`;
    // Frames are delivered asynchronously, so the response cannot arrive before the wait is registered.
    this.send(frame);
    return (await this.awaitFrame((f) => isResponse(f) && matches(f), timeoutMs, what)) as ResponseFrame;
  }

  /** Resolves with the next response frame (one with a boolean `ok`) that satisfies `predicate`. */
  nextResponse(predicate?: (response: ResponseFrame) => boolean, timeoutMs = 5_000): Promise<ResponseFrame> {
    const what = predicate ? 'a response matching the predicate' : 'a response';
    return this.awaitFrame((f) => isResponse(f) && (predicate?.(f) ?? true), timeoutMs, what) as Promise<ResponseFrame>;
  }

  /** Resolves with the next event frame named `name` (e.g. `'task'`, `'task.status'`). */
  nextEvent(name: string, timeoutMs = 5_000): Promise<EventFrame> {
    return this.awaitFrame((f) => f.event === name, timeoutMs, `event "${name}"`) as Promise<EventFrame>;
  }

  /** Resolves with the next frame of any kind that satisfies `predicate`; `what` names it in errors. */
  nextFrame(
    predicate: (frame: Frame) => boolean,
    timeoutMs = 5_000,
    what = 'a frame matching the predicate',
  ): Promise<Frame> {
    return this.awaitFrame(predicate, timeoutMs, what);
  }

  /** Frames received and not yet taken by a `next*` or `request` call, oldest first. */
  pending(): readonly Frame[] {
    return [...this.queue];
  }

  /** Frames received that were not a JSON object (binary, or text that did not parse), oldest first. */
  unparsedFrames(): readonly (string | Buffer)[] {
    return [...this.unparsed];
  }

  /**
   * Starts the closing handshake and resolves once closed. Terminates the connection if the server
   * has not completed the handshake within 2 s. Safe to call more than once.
   */
  close(code = 1000, reason = ''): Promise<CloseInfo> {
    if (this.raw.readyState === WebSocket.OPEN) {
      this.raw.close(code, reason);
      const fallback = setTimeout(() => this.raw.terminate(), 2_000);
      void this.closed.then(() => clearTimeout(fallback));
    } else if (this.raw.readyState === WebSocket.CONNECTING) {
      this.raw.terminate();
    }
    return this.closed;
  }

  /** Drops the connection without a closing handshake, as a crashed client would, and resolves once closed. */
  terminate(): Promise<CloseInfo> {
    this.raw.terminate();
    return this.closed;
  }

  private write(data: string | Uint8Array | ArrayBuffer, binary: boolean): void {
    if (this.raw.readyState !== WebSocket.OPEN) {
      throw new Error(`cannot send on a socket that is not open (${this.describeClose()})`);
    }
    this.raw.send(data, { binary }, (error) => {
      if (error) this.lastError = error;
    });
  }

  private awaitFrame(accepts: (frame: Frame) => boolean, timeoutMs: number, what: string): Promise<Frame> {
    const index = this.queue.findIndex(accepts);
    if (index >= 0) {
      const [frame] = this.queue.splice(index, 1);
      if (frame) return Promise.resolve(frame);
    }
    if (this.closeInfo) {
      return Promise.reject(new Error(`${this.describeClose()} before ${what} arrived${this.describePending()}`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        accepts,
        what,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${this.describePending()}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  private receive(data: RawData, isBinary: boolean): void {
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const frame = isBinary ? undefined : parseFrame(bytes.toString('utf8'));
    if (!frame) {
      this.unparsed.push(isBinary ? bytes : bytes.toString('utf8'));
      return;
    }
    const index = this.waiters.findIndex((waiter) => waiter.accepts(frame));
    const waiter = index >= 0 ? this.waiters.splice(index, 1)[0] : undefined;
    if (!waiter) {
      this.queue.push(frame);
      return;
    }
    clearTimeout(waiter.timer);
    waiter.resolve(frame);
  }

  private describeClose(): string {
    if (this.closeInfo) return `socket closed with ${this.closeInfo.code} "${this.closeInfo.reason}"`;
    return this.raw.readyState === WebSocket.CLOSING ? 'socket closing' : 'socket open';
  }

  private describePending(): string {
    const parts: string[] = [];
    if (this.queue.length > 0) {
      parts.push(`unmatched frames: ${this.queue.map((f) => JSON.stringify(f).slice(0, 300)).join(', ')}`);
    }
    if (this.unparsed.length > 0) parts.push(`${this.unparsed.length} unparsed frame(s)`);
    return parts.length > 0 ? ` (${parts.join('; ')})` : ' (no unmatched frames)';
  }
}

function isResponse(frame: Frame): frame is ResponseFrame {
  return typeof frame.ok === 'boolean';
}

function parseFrame(text: string): Frame | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Frame) : undefined;
  } catch {
    return undefined;
  }
}
