import { GatewayError } from './errors';
import { clampTimer } from './timer';

/** Called with each `task.progress` the gateway forwards for a `coordinator` call in flight. */
export type ProgressListener = (progress: unknown, info: { taskId: string }) => void;

/** @internal How one request is tracked. */
export interface TrackOptions {
  /** Local deadline: the request is rejected with `TIMEOUT` when it passes. */
  timeoutMs: number;
  /** Aborting it rejects the request with `CANCELED`. */
  signal?: AbortSignal | undefined;
  onProgress?: ProgressListener | undefined;
  /** Called once when the signal aborts a request still pending (e.g. to cancel its task), with its request id. */
  onAbort?: ((taskId: string | undefined, requestId: number | string) => void) | undefined;
}

interface PendingRequest {
  action: string;
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  release: () => void;
  onProgress: ProgressListener | undefined;
  /** Learned from the first `task.progress` of a `coordinator` call. */
  taskId: string | undefined;
}

/**
 * @internal The requests of one client that wait for a response, by id. Each ends exactly once: with
 * its response, at its local deadline, when its signal aborts, or when the connection closes.
 */
export class PendingRequests {
  private readonly entries = new Map<number, PendingRequest>();
  private lastId = 0;

  /** A fresh request id. Ids grow for the client's whole life, so a late response never matches a newer request. */
  nextId(): number {
    this.lastId += 1;
    return this.lastId;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Tracks request `id` of `action`; the promise settles exactly once. */
  track(id: number, action: string, options: TrackOptions): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const { signal } = options;
      if (signal?.aborted) {
        reject(abortedError(action, signal));
        return;
      }
      const timer = setTimeout(() => {
        this.reject(
          id,
          new GatewayError('TIMEOUT', `no response to '${action}' within ${options.timeoutMs} ms`, {
            retryable: true,
          }),
        );
      }, clampTimer(options.timeoutMs));
      const onAbort = (): void => {
        const taskId = this.entries.get(id)?.taskId;
        if (signal && this.reject(id, abortedError(action, signal))) options.onAbort?.(taskId, id);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.entries.set(id, {
        action,
        resolve,
        reject,
        release: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
        onProgress: options.onProgress,
        taskId: undefined,
      });
    });
  }

  /** Resolves request `id`; false if it is not pending (answered, timed out, or never sent). */
  resolve(id: number, result: unknown): boolean {
    const entry = this.take(id);
    entry?.resolve(result);
    return entry !== undefined;
  }

  /** Rejects request `id`; false if it is not pending. */
  reject(id: number, error: Error): boolean {
    const entry = this.take(id);
    entry?.reject(error);
    return entry !== undefined;
  }

  /** Rejects every pending request, e.g. when the connection closes. */
  rejectAll(errorFor: (action: string) => Error): void {
    for (const id of [...this.entries.keys()]) {
      const action = this.entries.get(id)?.action ?? '';
      this.reject(id, errorFor(action));
    }
  }

  /** The action of pending request `id`, if it is pending. */
  actionOf(id: number): string | undefined {
    return this.entries.get(id)?.action;
  }

  /**
   * Hands a `task.progress` to the request it belongs to. Returns the listener to call (the caller calls
   * it, so a throwing listener cannot corrupt this table), or undefined when nobody listens.
   */
  progressListener(id: number, taskId: string): ProgressListener | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    entry.taskId = taskId;
    return entry.onProgress;
  }

  /** Whether `id` is one this client sent that is no longer pending (a response that came too late). */
  isSettled(id: unknown): boolean {
    return typeof id === 'number' && Number.isInteger(id) && id > 0 && id <= this.lastId && !this.entries.has(id);
  }

  private take(id: number): PendingRequest | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    entry.release();
    return entry;
  }
}

function abortedError(action: string, signal: AbortSignal): GatewayError {
  return new GatewayError('CANCELED', `'${action}' was aborted`, { retryable: false, cause: signal.reason });
}
