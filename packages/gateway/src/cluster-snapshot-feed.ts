import { TIMINGS } from '@openclaw/core';
import type { ServerFrame } from '@openclaw/protocol';
import type { ClusterStatus } from './cluster-status';
import type { Session } from './session';

/**
 * `cluster.watch`: connections (a dashboard, an operator's console) that get a `cluster.snapshot`
 * event every interval, built from the replicas' reports in Redis, until they unwatch or close. One
 * snapshot per tenant per half second serves every watcher of that tenant on this replica.
 */
export class ClusterSnapshotFeed {
  private readonly timers = new Map<Session, NodeJS.Timeout>();
  private readonly recent = new Map<string, { at: number; status: Promise<ClusterStatus> }>();

  constructor(
    /** The tenant's snapshot, audit tail included. */
    private readonly status: (tenant: string) => Promise<ClusterStatus>,
    /** Whether a connection may see the audit tail. */
    private readonly mayReadAudit: (session: Session) => boolean,
  ) {}

  /** Starts (or restarts, with a new interval) a connection's watch; the first snapshot follows at once. */
  watch(session: Session, intervalMs: number): void {
    this.unwatch(session);
    const tick = (): void => {
      this.snapshot(session.principal.tenant).then(
        (status) => {
          if (!this.timers.has(session)) return;
          const { audit, ...rest } = status;
          const visible = audit !== undefined && this.mayReadAudit(session) ? { ...rest, audit } : rest;
          session.send({ event: 'cluster.snapshot', ...visible } as unknown as ServerFrame);
        },
        () => undefined,
      );
    };
    const timer = setInterval(tick, intervalMs);
    timer.unref();
    this.timers.set(session, timer);
    // After the response to `cluster.watch`.
    setImmediate(tick);
  }

  /** @returns whether the connection was watching. */
  unwatch(session: Session): boolean {
    const timer = this.timers.get(session);
    if (!timer) return false;
    clearInterval(timer);
    this.timers.delete(session);
    return true;
  }

  /** How many connections watch on this replica. */
  get size(): number {
    return this.timers.size;
  }

  close(): void {
    for (const timer of this.timers.values()) clearInterval(timer);
    this.timers.clear();
  }

  private snapshot(tenant: string): Promise<ClusterStatus> {
    const now = Date.now();
    const cached = this.recent.get(tenant);
    if (cached && now - cached.at < TIMINGS.snapshotReuseMs) return cached.status;
    const status = this.status(tenant);
    this.recent.set(tenant, { at: now, status });
    status.catch(() => this.recent.delete(tenant));
    return status;
  }
}
