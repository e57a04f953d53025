import type { TaskDispatcher } from '@openclaw/core';
import { TIMINGS } from '@openclaw/core';
import { CloseCode, DRAIN_CLOSE_REASON } from '@openclaw/protocol';
import type { AgentHost } from './agent-host';
import type { Session } from './session';

/** How often the drain closes its next batch of connections. */
const DRAIN_TICK_MS = 50;

/** What a replica's drain works on. */
export interface DrainParts {
  /** The replica's open connections (connections remove themselves as they close). */
  sessions: ReadonlySet<Session>;
  agents: AgentHost;
  dispatcher: TaskDispatcher;
  /** `OPENCLAW_DRAIN_MS`: how long calls and agent tasks in flight get to finish. */
  drainMs: number;
  /** `OPENCLAW_DRAIN_CLOSE_RATE`: connections closed per second at least. */
  closeRate: number;
}

/**
 * A replica's drain: its agents are withdrawn from routing (they finish what they hold), its
 * connections are closed a batch at a time within the drain window, then nothing more is dispatched,
 * the calls still waiting are answered, and every connection still open is closed (1001, or 1012 when
 * a request could not be answered) and at last cut.
 */
export async function drainConnections(parts: DrainParts): Promise<void> {
  const deadline = Date.now() + parts.drainMs;
  // New tasks go to other replicas' instances; ours finish what they hold.
  await parts.agents.withdraw(parts.drainMs + TIMINGS.drainAgentMoveMs);
  await closeInBatches(parts, deadline);
  // The window is over. Dispatch nothing more, and answer the calls still waiting (their agents have
  // the tasks) before the close frames: a 1001 promises that what it leaves unanswered was never
  // dispatched. A request still being handled (in the middle of its pick, whose script may already
  // have sent the task to an agent) is answered first too; one not answered within a grace closes
  // its connection with 1012, which promises nothing.
  parts.dispatcher.close();
  parts.dispatcher.failAll('this replica is shutting down');
  const answeredBy = Date.now() + TIMINGS.drainFinalAnswersMs;
  while ([...parts.sessions].some((s) => s.handling > 0) && Date.now() < answeredBy) {
    await new Promise((resolve) => setTimeout(resolve, DRAIN_TICK_MS));
  }
  for (const session of parts.sessions) {
    if (session.handling > 0) session.close(CloseCode.SERVICE_RESTART, 'replica stopped before answering');
    else session.close(CloseCode.GOING_AWAY, DRAIN_CLOSE_REASON);
  }
  // The closing handshakes complete (each closed connection is audited), or are cut short.
  const closedBy = Date.now() + TIMINGS.drainCloseHandshakeMs;
  while (parts.sessions.size > 0 && Date.now() < closedBy) {
    await new Promise((resolve) => setTimeout(resolve, DRAIN_TICK_MS));
  }
  for (const session of parts.sessions) session.terminate();
  await Promise.allSettled([...parts.sessions].map((s) => parts.agents.detach(s)));
}

/**
 * The drain's closing of connections, a batch at a time, at `OPENCLAW_DRAIN_CLOSE_RATE` per second
 * or faster if needed to be done within half the drain window; agents first (callers reconnecting
 * elsewhere then find them registered there). An idle connection (nothing being handled, no task
 * held by its agents) is closed with 1001 at its turn. A busy one is told to leave: it is refused new
 * requests (`UNAVAILABLE`, retryable, `dispatched: false`), and closed with 1001 as soon as its work
 * is done. Returns when every connection is closed or at the deadline.
 */
async function closeInBatches(parts: DrainParts, deadline: number): Promise<void> {
  const start = Date.now();
  const spreadUntil = start + (deadline - start) / 2;
  const isIdle = (s: Session) => s.handling === 0 && s.inFlight === 0 && parts.agents.openTasksOf(s) === 0;
  const perSecond = Math.max(parts.closeRate, parts.sessions.size / Math.max((spreadUntil - start) / 1000, 0.001));
  const closed = new Set<Session>();
  const close = (session: Session) => {
    session.close(CloseCode.GOING_AWAY, DRAIN_CLOSE_REASON);
    closed.add(session);
  };
  let allowance = 0;
  let last = start;
  const open = () => [...parts.sessions].filter((s) => !closed.has(s));
  while (open().length > 0 && Date.now() < deadline) {
    const now = Date.now();
    allowance += ((now - last) / 1000) * perSecond;
    last = now;
    for (const session of open()) if (session.leaving && isIdle(session)) close(session);
    const turn = open()
      .filter((s) => !s.leaving)
      .sort((a, b) => b.instances.size - a.instances.size || Number(isIdle(b)) - Number(isIdle(a)));
    // At least one per tick, all of them once the spreading time is over.
    const count = now >= spreadUntil ? turn.length : Math.max(1, Math.floor(allowance));
    for (const session of turn.slice(0, count)) {
      if (isIdle(session)) close(session);
      else session.leaving = true;
      allowance -= 1;
    }
    allowance = Math.max(0, allowance);
    if (open().length > 0) await new Promise((resolve) => setTimeout(resolve, DRAIN_TICK_MS));
  }
}
