import { GatewayError } from '@openclaw/protocol';
import type { Logger } from '../telemetry/logger';
import { type BusMessage, type OutgoingBusMessage, parseBusMessage } from './bus-message';
import { BusHandlers, BusStats, type BusTopics, type ClusterBus, TopicHandlers } from './cluster-bus';

/** The trace context of a hop that was given none (no trace is recorded in memory). */
const UNTRACED = '00-00000000000000000000000000000000-0000000000000000-00';

/**
 * The replicas of one in-memory cluster: the buses made by {@link InMemoryBusNetwork.bus} reach
 * each other as {@link RedisClusterBus}es reach each other through Redis, each message serialised
 * and parsed as it would be on the wire, delivered on a later turn of the event loop, at most once.
 * For tests of routing without Redis, and for embedding a one-process cluster.
 *
 * @example
 * ```ts
 * const network = new InMemoryBusNetwork();
 * const a = network.bus('A');
 * const b = network.bus('B');
 * await Promise.all([a.start(), b.start()]);
 * b.onMessage((message) => ...);
 * await a.send('B', { type: 'task.cancel-request', taskId });
 * ```
 */
export class InMemoryBusNetwork {
  private readonly inboxes = new Map<string, InMemoryBus>();
  /** Replicas cut off: they neither send nor receive (a partition, or a process that hangs). */
  private readonly cut = new Set<string>();
  /** Who listens to each topic. */
  private readonly listeners = new Map<string, Set<InMemoryBus>>();

  /** A bus for one replica of this network (it receives once started); handler failures go to `logger`. */
  bus(replicaId: string, logger?: Logger): InMemoryBus {
    return new InMemoryBus(this, replicaId, logger);
  }

  /**
   * Cuts a replica off, as a lost Redis connection would: what is sent to it from now on is lost,
   * and what it sends fails with `UNAVAILABLE`; its subscription-lost handler runs. `restore` undoes it.
   */
  partition(replicaId: string): void {
    if (this.cut.has(replicaId)) return;
    this.cut.add(replicaId);
    this.inboxes.get(replicaId)?.lost();
  }

  /** Ends a {@link InMemoryBusNetwork.partition}: the replica receives again, and resyncs. */
  restore(replicaId: string): void {
    if (!this.cut.delete(replicaId)) return;
    this.inboxes.get(replicaId)?.resubscribed();
  }

  /** @internal */
  join(bus: InMemoryBus): void {
    this.inboxes.set(bus.replicaId, bus);
  }

  /** @internal */
  leave(bus: InMemoryBus): void {
    if (this.inboxes.get(bus.replicaId) === bus) this.inboxes.delete(bus.replicaId);
  }

  /** @internal */
  listen(bus: InMemoryBus, topic: string, on: boolean): void {
    const buses = this.listeners.get(topic);
    if (on) {
      if (buses) buses.add(bus);
      else this.listeners.set(topic, new Set([bus]));
    } else if (buses?.delete(bus) && buses.size === 0) this.listeners.delete(topic);
  }

  /** @internal Delivers a message on a topic to every bus listening. @returns how many receive it. */
  publish(topic: string, json: string): number {
    const receiving = [...(this.listeners.get(topic) ?? [])].filter((bus) => !this.cut.has(bus.replicaId));
    for (const bus of receiving) setImmediate(() => bus.topics.received(topic, json));
    return receiving.length;
  }

  /** @internal */
  reachable(replicaId: string): boolean {
    return !this.cut.has(replicaId);
  }

  /** @internal Delivers a message's wire form to one inbox, or every one. @returns how many receive it. */
  deliver(to: string | '*', json: string): number {
    const targets =
      to === '*' ? [...this.inboxes.values()] : this.inboxes.has(to) ? [this.inboxes.get(to)!] : ([] as InMemoryBus[]);
    const receiving = targets.filter((bus) => !this.cut.has(bus.replicaId));
    for (const bus of receiving) setImmediate(() => bus.receive(json));
    return receiving.length;
  }
}

/** One replica's bus on an {@link InMemoryBusNetwork}. */
export class InMemoryBus extends BusHandlers implements ClusterBus {
  readonly stats = new BusStats();
  readonly topics: InMemoryBusTopics;
  private started = false;
  private sequence = 0;

  constructor(
    private readonly network: InMemoryBusNetwork,
    readonly replicaId: string,
    private readonly logger?: Logger,
  ) {
    super();
    this.topics = new InMemoryBusTopics(network, this, logger);
  }

  async start(): Promise<void> {
    this.started = true;
    this.network.join(this);
  }

  async send(to: string, message: OutgoingBusMessage): Promise<number> {
    this.checkConnected();
    const receivers = this.network.deliver(to, JSON.stringify(this.stamp(message)));
    this.stats.countSent(message.type);
    return receivers;
  }

  async broadcast(message: OutgoingBusMessage): Promise<void> {
    this.checkConnected();
    this.network.deliver('*', JSON.stringify(this.stamp(message)));
    this.stats.countSent(message.type);
  }

  healthy(): boolean {
    return this.started && this.network.reachable(this.replicaId);
  }

  canaryAgeMs(): number {
    return 0;
  }

  async close(): Promise<void> {
    this.started = false;
    this.topics.close();
    this.network.leave(this);
  }

  /** @internal A message's wire form reaches this inbox. */
  receive(json: string): void {
    if (!this.started) return;
    let raw: unknown;
    try {
      raw = JSON.parse(json);
    } catch {
      this.stats.dropped += 1;
      return;
    }
    const parsed = parseBusMessage(raw);
    if (!parsed.success) {
      this.stats.dropped += 1;
      return;
    }
    this.stats.countReceived(parsed.data.type);
    try {
      this.handler(parsed.data);
    } catch (error) {
      // As on Redis: a handler's failure is logged, and the inbox keeps receiving.
      this.logger?.error({ err: error, type: parsed.data.type }, 'bus handler failed');
    }
  }

  /** @internal */
  lost(): void {
    this.subscriptionLostHandler();
  }

  /** @internal */
  resubscribed(): void {
    this.resubscribedHandler();
  }

  /** @internal Throws `UNAVAILABLE` unless this bus is started and not cut off. */
  checkConnected(): void {
    if (!this.started || !this.network.reachable(this.replicaId)) {
      throw new GatewayError('UNAVAILABLE', 'the cluster bus is not connected');
    }
  }

  private stamp(message: OutgoingBusMessage): BusMessage {
    this.sequence += 1;
    return {
      id: `${this.replicaId}-${this.sequence.toString(36)}`,
      sender: this.replicaId,
      ts: Date.now(),
      ...message,
      traceparent: message.traceparent ?? UNTRACED,
    } as BusMessage;
  }
}

/** The topics of one {@link InMemoryBus}. */
class InMemoryBusTopics extends TopicHandlers implements BusTopics {
  constructor(
    private readonly network: InMemoryBusNetwork,
    private readonly bus: InMemoryBus,
    private readonly logger?: Logger,
  ) {
    super();
  }

  async listen(...topics: string[]): Promise<void> {
    this.bus.checkConnected();
    for (const topic of topics) {
      this.listening.add(topic);
      this.network.listen(this.bus, topic, true);
    }
  }

  stop(...topics: string[]): void {
    for (const topic of topics) {
      this.listening.delete(topic);
      this.network.listen(this.bus, topic, false);
    }
  }

  async publish(topic: string, json: string): Promise<number> {
    this.bus.checkConnected();
    return this.network.publish(topic, json);
  }

  /** @internal */
  received(topic: string, json: string): void {
    if (this.listening.has(topic)) this.deliver(topic, json, this.logger);
  }

  /** @internal The bus closed: it listens to nothing any more. */
  close(): void {
    this.stop(...this.listening);
  }
}
