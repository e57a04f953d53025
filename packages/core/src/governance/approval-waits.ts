import type { Approval } from './approval-record';

/** Options of {@link ApprovalWaits}. */
export interface ApprovalWaitsOptions {
  /** How often a waiting call looks at its approval in Redis (a missed notice costs at most this). */
  pollMs: number;
  /** Reads an approval from Redis. */
  read: (tenant: string, approvalId: string) => Promise<Approval | undefined>;
  /** Ends a pending approval past its time. @returns the approval as it now is. */
  expire: (tenant: string, approvalId: string) => Promise<Approval | undefined>;
}

/**
 * The calls on this process waiting for approvals to be decided. Each looks at its approval in
 * Redis every `pollMs`, and is woken at once by {@link ApprovalWaits.notify} when a change is heard
 * of (made here, or on another replica that says so over the bus).
 */
export class ApprovalWaits {
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(private readonly options: ApprovalWaitsOptions) {}

  /**
   * Waits for an approval to be decided, until `until` (or its expiry, which it then records).
   * `known`: the approval as last seen, what the wait goes on while Redis cannot be read.
   * Woken at once by {@link notify}; looks in Redis every `pollMs` besides (a notice may be lost).
   * `signal` ends the wait early (the process is shutting down).
   * @returns the approval as it stands at the end (still `pending` when `until` or the signal came first).
   */
  async wait(
    tenant: string,
    approvalId: string,
    until: number,
    known?: Approval,
    signal?: AbortSignal,
  ): Promise<Approval | undefined> {
    const { read, expire, pollMs } = this.options;
    let last = known;
    for (;;) {
      if (signal?.aborted) return last;
      // Redis out of reach: keep waiting on what was last seen (until the deadline at most).
      let approval = await read(tenant, approvalId).catch(() => last);
      last = approval;
      const now = Date.now();
      if (approval && approval.status === 'pending' && now >= approval.expiresAt) {
        approval = await expire(tenant, approvalId).catch(() => approval);
      }
      if (approval?.status !== 'pending' || now >= until) return approval;
      const wakeAt = Math.min(until, approval.expiresAt, now + pollMs);
      await new Promise<void>((resolve) => {
        let set = this.waiters.get(approvalId);
        if (!set) {
          set = new Set();
          this.waiters.set(approvalId, set);
        }
        const waiters = set;
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          waiters.delete(done);
          if (waiters.size === 0) this.waiters.delete(approvalId);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, wakeAt - now));
        waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** Wakes the calls on this process waiting for an approval (a decision was made, maybe elsewhere). */
  notify(approvalId: string): void {
    for (const wake of [...(this.waiters.get(approvalId) ?? [])]) wake();
  }

  /** How many calls on this process wait for approvals. */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }
}
