import { CloseCode, DRAIN_CLOSE_REASON, ResponseSchema } from '@openclaw/protocol';
import { backoffDelay } from './backoff';
import type { ClientEventSink } from './client-events';
import type { RequestOptions } from './client-requests';
import { GatewayError, UnexpectedFrameError } from './errors';
import type { GatewayConnection } from './gateway-connection';
import { PendingRequests, type ProgressListener, type TrackOptions } from './pending-requests';
import { clampTimer } from './timer';

/** @internal Options of {@link RequestChannel.send}: a request's own, and what the client's methods add. */
export interface SendOptions extends RequestOptions {
  onProgress?: ProgressListener | undefined;
  onAbort?: TrackOptions['onAbort'];
}

/** @internal How {@link RequestChannel.withRetries} sends a call again. */
export interface RetryOptions {
  /** The action of the call, for the message of `CANCELED`. */
  action: string;
  /** The deadline of the whole call, attempts and waits between them included, in milliseconds. */
  timeoutMs: number;
  /** Aborting it stops waiting to send again, with `CANCELED`. */
  signal?: AbortSignal | undefined;
  /** False: the first error is final. */
  enabled: boolean;
  /** Called before each wait to send again: the attempt about to be made (2 for the first retry). */
  onRetry(attempt: number, delayMs: number, error: GatewayError): void;
}

/** @internal What a {@link RequestChannel} needs of the connection it sends on. */
export type RequestConnection = Pick<GatewayConnection, 'state' | 'session' | 'isOpen' | 'send' | 'onceSettled'>;

/** Backoff of transparent call retries: the cap doubles from 50 ms to 1 s, with full jitter. */
const CALL_RETRY_BACKOFF = { initialDelayMs: 50, maxDelayMs: 1_000 };
/** A retry is not worth making with less than this left of the call's deadline. */
const CALL_RETRY_MIN_LEFT_MS = 20;

/**
 * @internal The requests of a client and their responses: each request frame gets a fresh id, its
 * response is matched by that id, and every request ends exactly once (response, local deadline,
 * abort, or the close of the connection it was sent on: requests are never carried over to the next
 * connection). Calls known not to have reached an agent are sent again by {@link withRetries}.
 */
export class RequestChannel {
  private readonly pending = new PendingRequests();

  constructor(
    private readonly connection: RequestConnection,
    private readonly events: ClientEventSink,
    /** Local deadline of a request that has none of its own, in milliseconds. */
    private readonly requestTimeoutMs: number,
  ) {}

  /**
   * Sends one request and resolves with its `result`, or rejects with a {@link GatewayError}: the error
   * response's, or `TIMEOUT` / `UNAVAILABLE` / `CANCELED` raised locally. A request made while no socket
   * is open rejects at once with `UNAVAILABLE`; it is not queued.
   */
  send(action: string, params: Record<string, unknown>, options: SendOptions): Promise<unknown> {
    if (!this.connection.isOpen) {
      return Promise.reject(this.notConnectedError(action));
    }
    if (options.signal?.aborted) {
      return Promise.reject(
        new GatewayError('CANCELED', `'${action}' was aborted`, { retryable: false, cause: options.signal.reason }),
      );
    }
    const id = this.pending.nextId();
    let text: string;
    try {
      // The envelope's own fields win over same-named params.
      text = this.serialise({ ...params, action, id });
    } catch (error) {
      return Promise.reject(error);
    }
    const settled = this.pending.track(id, action, {
      timeoutMs: options.timeoutMs ?? this.requestTimeoutMs,
      signal: options.signal,
      onProgress: options.onProgress,
      onAbort: options.onAbort,
    });
    this.connection.send(text, (error) => {
      if (error) {
        this.pending.reject(
          id,
          new GatewayError('UNAVAILABLE', `could not send '${action}': ${error.message}`, { retryable: true }),
        );
      }
    });
    return settled;
  }

  /**
   * Sends a frame that gets no response (an agent's reply). Returns false when no socket is open; throws
   * `BAD_REQUEST` / `PAYLOAD_TOO_LARGE` when the frame cannot be sent.
   */
  sendReply(frame: Record<string, unknown>): boolean {
    const text = this.serialise(frame);
    if (!this.connection.isOpen) return false;
    // A reply lost in a dying socket is the same as one not sent: the gateway ends the task by its deadline.
    this.connection.send(text, () => undefined);
    return true;
  }

  /**
   * Runs `attempt` until it resolves, sending a call again, within its deadline, when it is known that no
   * agent received it: a retryable error marked `dispatched: false`. Each attempt gets what is left of the
   * deadline, and the error of the one before. While the client reconnects, the next attempt waits for
   * the connection (at most until the deadline).
   */
  async withRetries<T>(
    attempt: (timeoutMs: number, lastError: GatewayError | undefined) => Promise<T>,
    options: RetryOptions,
  ): Promise<T> {
    const deadline = Date.now() + options.timeoutMs;
    let lastError: GatewayError | undefined;
    for (let number = 1; ; number++) {
      try {
        // The first attempt gets the whole timeout as given (not less a millisecond that passed since).
        const left = number === 1 ? options.timeoutMs : Math.max(1, deadline - Date.now());
        return await attempt(left, lastError);
      } catch (error) {
        const delayMs = options.enabled ? retryDelay(error, number, deadline) : undefined;
        if (delayMs === undefined) throw error;
        options.onRetry(number + 1, delayMs, error as GatewayError);
        await this.untilRetry(options.action, delayMs, deadline, options.signal);
        // Still reconnecting at the deadline, or back too late to be worth it: the call ends with
        // what stopped it, never with a last attempt an agent could start and not finish in time.
        if (deadline - Date.now() < CALL_RETRY_MIN_LEFT_MS) throw error;
        lastError = error as GatewayError;
      }
    }
  }

  /** Handles a response frame: settles the request it answers, or reports it. */
  onResponse(frame: object, text: string): void {
    const parsed = ResponseSchema.safeParse(frame);
    const id = (frame as { id?: unknown }).id;
    if (!parsed.success) {
      const error = new UnexpectedFrameError('the gateway sent a malformed response', text, { cause: parsed.error });
      // The request it answers ends now rather than at its deadline.
      if (
        typeof id !== 'number' ||
        !this.pending.reject(id, new GatewayError('INTERNAL', error.message, { retryable: false }))
      ) {
        this.events.reportError(error);
      }
      return;
    }
    const response = parsed.data;
    if (typeof response.id === 'number') {
      const settledNow = response.ok
        ? this.pending.resolve(response.id, response.result)
        : this.pending.reject(response.id, GatewayError.fromWire(response.error));
      // A response to a request that already timed out or was aborted is expected, and dropped.
      if (settledNow || this.pending.isSettled(response.id)) return;
    }
    // Not ours: e.g. the gateway refusing an agent reply, which carries no id.
    if (!response.ok) this.events.reportError(GatewayError.fromWire(response.error));
    else {
      this.events.reportError(
        new UnexpectedFrameError('the gateway sent a response to no request of this client', text),
      );
    }
  }

  /** The `onProgress` of pending request `id`, told its task id; undefined when nobody listens. */
  progressListener(id: number, taskId: string): ProgressListener | undefined {
    return this.pending.progressListener(id, taskId);
  }

  /** The socket closed: every request sent on it ends with `UNAVAILABLE`, retryable unless the client closed it. */
  connectionClosed(code: number, reason: string, byClient: boolean): void {
    this.pending.rejectAll(
      (action) =>
        new GatewayError(
          'UNAVAILABLE',
          byClient
            ? `the client closed before '${action}' was answered`
            : `the connection closed (${code}) before '${action}' was answered`,
          { retryable: !byClient, details: { closeCode: code, reason } },
        ),
    );
  }

  /** The client closed: settles whatever the socket's close did not (e.g. a request sent while no socket was open). */
  clientClosed(): void {
    this.pending.rejectAll(
      (action) =>
        new GatewayError('UNAVAILABLE', `the client closed before '${action}' was answered`, { retryable: false }),
    );
  }

  /**
   * Waits `delayMs`, then, if the client is reconnecting, until it is connected again (at most until
   * `deadline`). Rejects with `CANCELED` when `signal` aborts.
   */
  private untilRetry(
    action: string,
    delayMs: number,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let stopWaiting = (): void => undefined;
      const done = (error?: GatewayError): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        stopWaiting();
        if (error) reject(error);
        else resolve();
      };
      const onAbort = (): void =>
        done(new GatewayError('CANCELED', `'${action}' was aborted`, { retryable: false, cause: signal?.reason }));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      timer = setTimeout(() => {
        const state = this.connection.state;
        if (state !== 'connecting' && state !== 'reconnecting') return done();
        stopWaiting = this.connection.onceSettled(() => done());
        timer = setTimeout(() => done(), clampTimer(Math.max(0, deadline - Date.now())));
      }, clampTimer(delayMs));
    });
  }

  /** JSON text of a frame; throws `BAD_REQUEST` / `PAYLOAD_TOO_LARGE` rather than send what the gateway refuses. */
  private serialise(frame: Record<string, unknown>): string {
    let text: string;
    try {
      text = JSON.stringify(frame);
    } catch (error) {
      throw new GatewayError('BAD_REQUEST', `'${String(frame.action)}' cannot be sent: it is not JSON-serialisable`, {
        cause: error,
      });
    }
    // The gateway closes the socket (1009) on a frame over its limit; refuse this one frame instead.
    const limit = this.connection.session?.limits.maxFrameBytes;
    if (limit !== undefined && Buffer.byteLength(text) > limit) {
      throw new GatewayError(
        'PAYLOAD_TOO_LARGE',
        `'${String(frame.action)}' is larger than the gateway's ${limit}-byte frame limit`,
        {
          details: { maxFrameBytes: limit },
        },
      );
    }
    return text;
  }

  private notConnectedError(action: string): GatewayError {
    if (this.connection.state === 'closed') {
      return new GatewayError('UNAVAILABLE', `cannot send '${action}': the client is closed`, { retryable: false });
    }
    if (this.connection.state === 'idle') {
      return new GatewayError('UNAVAILABLE', `cannot send '${action}': the client was not started (call start())`, {
        retryable: false,
      });
    }
    return new GatewayError('UNAVAILABLE', `cannot send '${action}': not connected to the gateway`, {
      retryable: true,
      dispatched: false,
    });
  }
}

/**
 * @internal How long to wait before sending a call again after `error` (attempt `attempt`, 1-based, failed), or
 * undefined when it must not be sent again: only a retryable error known not to have reached an agent
 * (`dispatched: false`) is retried, and only while the deadline leaves room.
 */
export function retryDelay(
  error: unknown,
  attempt: number,
  deadline: number,
  random: () => number = Math.random,
): number | undefined {
  if (!(error instanceof GatewayError) || !error.retryable || error.dispatched !== false) return undefined;
  const delayMs = Math.max(error.retryAfterMs ?? 0, backoffDelay(attempt - 1, CALL_RETRY_BACKOFF, random));
  return Date.now() + delayMs + CALL_RETRY_MIN_LEFT_MS < deadline ? delayMs : undefined;
}

/**
 * @internal Whether an `UNAVAILABLE` raised for a request its closing connection left unanswered came
 * from a gateway replica's drain: close code 1001 with the gateway's drain reason.
 */
export function isDrainClose(error: GatewayError): boolean {
  const details = error.details as { closeCode?: unknown; reason?: unknown } | undefined;
  return details?.closeCode === CloseCode.GOING_AWAY && details.reason === DRAIN_CLOSE_REASON;
}
