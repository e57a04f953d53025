import type { BusTopics, Logger } from '@openclaw/core';
import type { ServerFrame } from '@openclaw/protocol';
import type { Session } from './session';

/** Most `state.watch` watches one connection may hold. */
export const MAX_STATE_WATCHES_PER_SESSION = 64;

/** The watches of one namespace's channel on this replica: each connection with its prefixes. */
type ChannelWatches = Map<Session, Set<string>>;

/**
 * Delivers `state.changed` events to the connections on this replica that watch a namespace. The
 * scripts that change a key publish the change on its namespace's channel (one per tenant and
 * namespace); this replica listens to the channels its connections watch, and only while they do.
 * Pub/sub is at most once: a watcher that lost its connection re-reads what it needs after
 * watching again (the SDK watches again by itself).
 */
export class StateWatches {
  private readonly channels = new Map<string, ChannelWatches>();
  private readonly bySession = new Map<Session, Set<string>>();

  private readonly onMessage = (channel: string, raw: string): void => {
    const watches = this.channels.get(channel);
    if (!watches) return;
    let change: { key?: unknown };
    try {
      change = JSON.parse(raw) as { key?: unknown };
    } catch {
      return;
    }
    if (typeof change.key !== 'string') return;
    const key = change.key;
    const frame = { event: 'state.changed', ...change } as unknown as ServerFrame;
    for (const [session, prefixes] of watches) {
      for (const prefix of prefixes) {
        if (key.startsWith(prefix)) {
          session.send(frame);
          break;
        }
      }
    }
  };

  constructor(
    private readonly topics: BusTopics,
    private readonly logger: Logger,
  ) {
    topics.onMessage(this.onMessage);
  }

  /**
   * Starts a watch of a namespace's channel, for keys with a prefix. Resolves once this replica
   * listens to it: changes made after the answer reach the connection.
   * @returns false when the connection holds its maximum of watches already.
   */
  async watch(session: Session, channel: string, prefix: string): Promise<boolean> {
    const mine = this.bySession.get(session) ?? new Set<string>();
    const watches = this.channels.get(channel);
    const prefixes = watches?.get(session);
    if (prefixes?.has(prefix)) return true;
    let count = 0;
    for (const ch of mine) count += this.channels.get(ch)?.get(session)?.size ?? 0;
    if (count >= MAX_STATE_WATCHES_PER_SESSION) return false;
    if (!watches) {
      await this.topics.listen(channel);
      // Another watch of the channel may have started while this one subscribed.
    }
    const now = this.channels.get(channel) ?? new Map<Session, Set<string>>();
    this.channels.set(channel, now);
    const set = now.get(session) ?? new Set<string>();
    set.add(prefix);
    now.set(session, set);
    mine.add(channel);
    this.bySession.set(session, mine);
    return true;
  }

  /** Ends a watch. @returns whether there was one. */
  unwatch(session: Session, channel: string, prefix: string): boolean {
    const watches = this.channels.get(channel);
    const prefixes = watches?.get(session);
    if (!watches || !prefixes?.delete(prefix)) return false;
    if (prefixes.size === 0) {
      watches.delete(session);
      this.bySession.get(session)?.delete(channel);
    }
    this.release(channel);
    return true;
  }

  /** A connection closed: its watches end. */
  detach(session: Session): void {
    const mine = this.bySession.get(session);
    if (!mine) return;
    this.bySession.delete(session);
    for (const channel of mine) {
      this.channels.get(channel)?.delete(session);
      this.release(channel);
    }
  }

  /** Stops listening to a channel nobody on this replica watches any more. */
  private release(channel: string): void {
    const watches = this.channels.get(channel);
    if (!watches || watches.size > 0) return;
    this.channels.delete(channel);
    this.topics.stop(channel);
    this.logger.debug({ channel }, 'no state watch left on a channel');
  }
}
