import type { MemoryEntry, MemoryEntryInput, StateChange, StateEntry, StateListItem } from '@openclaw/protocol';
import { GatewayError } from './errors';

export type { MemoryEntry, MemoryEntryInput, StateChange, StateEntry, StateListItem };

/** Sends one request; the client's `request`. */
type Send = <T>(action: string, params: Record<string, unknown>) => Promise<T>;

/** A watch started by {@link StateClient.watch}. */
export interface StateWatch {
  /** Ends the watch (at the gateway too, when connected). */
  close(): Promise<void>;
}

interface ActiveWatch {
  namespace: string;
  prefix: string;
  listener: (change: StateChange) => void;
}

/**
 * The tenant's shared state (`client.state`): keys with JSON values in namespaces, versioned for
 * compare-and-set. See docs/state.md.
 *
 * @example
 * const { version } = await client.state.set('orders', 'o-1', { step: 'fetched' }, { ifVersion: 0 });
 * const entry = await client.state.get<{ step: string }>('orders', 'o-1');
 * const watch = await client.state.watch('orders', (change) => console.log(change.key, change.op));
 */
export class StateClient {
  private readonly watches = new Set<ActiveWatch>();

  constructor(
    private readonly send: Send,
    private readonly reportError: (error: unknown) => void,
  ) {}

  /** A key, or undefined when it is absent or expired. */
  async get<T = unknown>(namespace: string, key: string): Promise<StateEntry<T> | undefined> {
    try {
      return await this.send<StateEntry<T>>('state.get', { namespace, key });
    } catch (error) {
      if (error instanceof GatewayError && error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  /**
   * Writes a key. With `ifVersion`, only if that is its version now (0: only if absent); otherwise it
   * rejects with `CONFLICT`, the current version in `error.details.version`.
   */
  set(
    namespace: string,
    key: string,
    value: unknown,
    options: { ttlMs?: number; ifVersion?: number } = {},
  ): Promise<{ version: number; expiresAt?: number }> {
    const params: Record<string, unknown> = { namespace, key, value: value === undefined ? null : value };
    if (options.ttlMs !== undefined) params.ttlMs = options.ttlMs;
    if (options.ifVersion !== undefined) params.ifVersion = options.ifVersion;
    return this.send('state.set', params);
  }

  /** Deletes a key. @returns whether it was there. */
  async delete(namespace: string, key: string, options: { ifVersion?: number } = {}): Promise<boolean> {
    const params: Record<string, unknown> = { namespace, key };
    if (options.ifVersion !== undefined) params.ifVersion = options.ifVersion;
    return (await this.send<{ deleted: boolean }>('state.delete', params)).deleted;
  }

  /** One page of a namespace's keys; pass the `cursor` it gives to get the next. */
  list(
    namespace: string,
    options: { prefix?: string; limit?: number; cursor?: string } = {},
  ): Promise<{ items: StateListItem[]; cursor?: string }> {
    const params: Record<string, unknown> = { namespace };
    if (options.prefix !== undefined) params.prefix = options.prefix;
    if (options.limit !== undefined) params.limit = options.limit;
    if (options.cursor !== undefined) params.cursor = options.cursor;
    return this.send('state.list', params);
  }

  /** Every key of a namespace (with a prefix), page after page. */
  async *keys(namespace: string, options: { prefix?: string } = {}): AsyncGenerator<StateListItem> {
    let cursor: string | undefined;
    do {
      const page = await this.list(namespace, { prefix: options.prefix, limit: 1000, cursor });
      yield* page.items;
      cursor = page.cursor ?? undefined;
    } while (cursor !== undefined);
  }

  /**
   * Calls `listener` for every change of a key of `namespace` that starts with `prefix`, made on any
   * replica. The watch is sent again after every reconnection (changes made while disconnected are
   * not replayed: read what you need again on `'connected'`).
   */
  async watch(
    namespace: string,
    listener: (change: StateChange) => void,
    options: { prefix?: string } = {},
  ): Promise<StateWatch> {
    const watch: ActiveWatch = { namespace, prefix: options.prefix ?? '', listener };
    await this.send('state.watch', { namespace, prefix: watch.prefix });
    this.watches.add(watch);
    return {
      close: async () => {
        if (!this.watches.delete(watch)) return;
        if (![...this.watches].some((w) => w.namespace === namespace && w.prefix === watch.prefix)) {
          await this.send('state.unwatch', { namespace, prefix: watch.prefix }).catch(() => undefined);
        }
      },
    };
  }

  /** @internal A `state.changed` event: to the watches it matches. */
  onChanged(frame: Record<string, unknown>): void {
    if (typeof frame.namespace !== 'string' || typeof frame.key !== 'string') return;
    const change: StateChange = {
      namespace: frame.namespace,
      key: frame.key,
      version: Number(frame.version),
      op: frame.op as StateChange['op'],
    };
    for (const watch of this.watches) {
      if (watch.namespace !== change.namespace || !change.key.startsWith(watch.prefix)) continue;
      try {
        watch.listener(change);
      } catch (error) {
        this.reportError(error);
      }
    }
  }

  /** @internal The connection is back: every watch is sent again. */
  onConnected(): void {
    const sent = new Set<string>();
    for (const watch of this.watches) {
      const id = `${watch.namespace}\u0000${watch.prefix}`;
      if (sent.has(id)) continue;
      sent.add(id);
      this.send('state.watch', { namespace: watch.namespace, prefix: watch.prefix }).catch((error: unknown) =>
        this.reportError(error),
      );
    }
  }
}

/**
 * The tenant's memory (`client.memory`): conversation threads, ordered logs of entries. See
 * docs/state.md.
 *
 * @example
 * await client.memory.append('case-7', { role: 'customer', content: 'My bill is wrong' });
 * const history = await client.memory.read('case-7', { last: 20 });
 */
export class MemoryClient {
  constructor(private readonly send: Send) {}

  /** Appends entries in order. @returns the last one's sequence number. */
  async append(thread: string, entries: MemoryEntryInput | readonly MemoryEntryInput[]): Promise<number> {
    const list = Array.isArray(entries) ? entries : [entries];
    return (await this.send<{ seq: number }>('memory.append', { thread, entries: list })).seq;
  }

  /** A thread's entries, oldest first: all, after a sequence number, or the newest `last`. */
  async read(thread: string, options: { after?: number; last?: number } = {}): Promise<MemoryEntry[]> {
    const params: Record<string, unknown> = { thread };
    if (options.after !== undefined) params.after = options.after;
    if (options.last !== undefined) params.last = options.last;
    return (await this.send<{ entries: MemoryEntry[] }>('memory.read', params)).entries;
  }

  /** Empties a thread (its numbering goes on). @returns how many entries it had. */
  async clear(thread: string): Promise<number> {
    return (await this.send<{ cleared: number }>('memory.clear', { thread })).cleared;
  }
}

/** A task's memory thread, as its handler gets it (`ctx.memory`). */
export interface ThreadMemory {
  readonly thread: string;
  read(options?: { after?: number; last?: number }): Promise<MemoryEntry[]>;
  append(entries: MemoryEntryInput | readonly MemoryEntryInput[]): Promise<number>;
}

/** A {@link ThreadMemory} bound to one thread. */
export function threadMemory(memory: MemoryClient, thread: string): ThreadMemory {
  return {
    thread,
    read: (options) => memory.read(thread, options),
    append: (entries) => memory.append(thread, entries),
  };
}
