/** How long requests may wait with none of them answered before they all fail: the run must not hang. */
const STALL_MS = 10_000;

interface Waiter {
  resolve: (output: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * Requests in flight on one caller connection, by numeric id. Every system's caller uses it the same
 * way, so its cost is the same for all. A lost reply cannot hang the benchmark: when nothing has been
 * answered for {@link STALL_MS} while requests wait, they all fail.
 */
export class Pending {
  private next = 1;
  private lastProgress = Date.now();
  private readonly waiting = new Map<number, Waiter>();
  private readonly watchdog: NodeJS.Timeout;

  constructor(private readonly name: string) {
    this.watchdog = setInterval(() => {
      if (this.waiting.size > 0 && Date.now() - this.lastProgress > STALL_MS) {
        this.failAll(`${this.name}: no reply for ${STALL_MS} ms with ${this.waiting.size} requests waiting`);
      }
    }, 1000);
    this.watchdog.unref();
  }

  /** Sends a request under a fresh id; resolves with its output. */
  open(send: (id: number) => void): Promise<unknown> {
    const id = this.next++;
    if (this.waiting.size === 0) this.lastProgress = Date.now();
    return new Promise<unknown>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      send(id);
    });
  }

  /** Ends a request with its output, or with an error message. Unknown ids are ignored. */
  settle(id: number, outcome: { output: unknown } | { error: string }): void {
    const waiter = this.waiting.get(id);
    if (!waiter) return;
    this.waiting.delete(id);
    this.lastProgress = Date.now();
    if ('error' in outcome) waiter.reject(new Error(outcome.error));
    else waiter.resolve(outcome.output);
  }

  /** Fails every waiting request (connection lost, stall). */
  failAll(message: string): void {
    const waiters = [...this.waiting.values()];
    this.waiting.clear();
    for (const waiter of waiters) waiter.reject(new Error(message));
  }

  close(): void {
    clearInterval(this.watchdog);
    this.failAll(`${this.name}: closed`);
  }
}
