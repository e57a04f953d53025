import { randomUUID } from 'node:crypto';
import { GatewayError } from '@openclaw/protocol';
import { type Context, context, type Span, SpanKind, trace } from '@opentelemetry/api';
import type { Cluster } from 'ioredis';
import { isCluster, type RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { childTraceparent, isTraceparent } from '../telemetry/trace-context';
import { contextOf, inSpan, traceparentOf, tracer, tracingActive } from '../telemetry/tracing';
import { type BusMessage, type OutgoingBusMessage, parseBusMessage } from './bus-message';
import { BusHandlers, BusStats, type BusTopics, type ClusterBus, TopicHandlers } from './cluster-bus';

/** Options of {@link RedisClusterBus}. */
export interface RedisClusterBusOptions {
  replicaId: string;
  keys: RedisKeys;
  /** Command connection used to publish (not owned: the caller closes it). */
  publisher: RedisClient;
  /** The process's subscribe-mode connection (not owned). */
  subscriber: RedisClient;
  logger: Logger;
  /** How often the replica sends itself a canary message. Default 2000 ms. */
  canaryIntervalMs?: number;
}

/**
 * {@link ClusterBus} over Redis pub/sub: one channel per replica (`RedisKeys.inbox`), so routing a
 * task is one PUBLISH to one replica, never a broadcast. On Redis Cluster the inboxes and the
 * broadcast channel use sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`): a message goes to the one shard
 * that owns its channel's slot, instead of to every node of the cluster. A periodic canary published to its own inbox
 * proves the subscriber still receives: a subscriber that silently stops is the classic failure of
 * Redis-backed WebSocket clusters, and `healthy()` turns false when the canary stops arriving.
 */
export class RedisClusterBus extends BusHandlers implements ClusterBus {
  readonly replicaId: string;
  private readonly keys: RedisKeys;
  private readonly publisher: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly logger: Logger;
  private readonly canaryIntervalMs: number;
  private readonly channel: string;
  /** Sharded pub/sub for the inboxes (on Redis Cluster). */
  private readonly sharded: boolean;
  /** The trace context of messages sent with none while tracing is off. */
  private readonly untracedParent = childTraceparent();
  /** Message ids: a random prefix of this process, then a counter (unique without a random draw each). */
  private readonly idPrefix = `${randomUUID().slice(0, 13)}-`;
  private sequence = 0;
  /** Messages waiting for the end of this turn, by destination replica. */
  private readonly outbox = new Map<string, OutboxBatch>();
  private flushScheduled = false;
  private readonly broadcastChannel: string;
  private canaryTimer: NodeJS.Timeout | undefined;
  private lastCanaryAt = 0;
  /** When the inbox last received anything (the canary, or a message from any process). */
  private lastHeardAt = 0;
  /** When the bus last subscribed again by itself because its canary stopped coming back. */
  private lastHealAt = 0;
  private healing = false;
  private startedAt = 0;
  private subscribed = false;
  private lostSubscription = false;
  private nodeGoneTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  readonly stats = new BusStats();
  readonly topics: RedisBusTopics;

  private readonly onRawMessage = (channel: string, raw: string): void => {
    if (channel !== this.channel && channel !== this.broadcastChannel) {
      this.topics.received(channel, raw);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      this.drop('not JSON');
      return;
    }
    // Several messages for this inbox published together arrive as one array.
    if (Array.isArray(json)) for (const item of json) this.receive(item);
    else this.receive(json);
  };

  private receive(json: unknown): void {
    const parsed = parseBusMessage(json);
    if (!parsed.success) {
      this.drop(parsed.error);
      return;
    }
    this.stats.countReceived(parsed.data.type);
    this.lastHeardAt = Date.now();
    if (parsed.data.type === 'canary') {
      this.lastCanaryAt = this.lastHeardAt;
      return;
    }
    const message = parsed.data;
    if (!tracingActive()) {
      this.deliver(message);
      return;
    }
    // The consumer side of the hop, in the sender's trace; the handler runs inside it.
    inSpan(
      `bus receive ${message.type}`,
      {
        kind: SpanKind.CONSUMER,
        parent: message.traceparent,
        attributes: {
          'messaging.system': 'redis',
          'messaging.operation.type': 'receive',
          'messaging.destination.name': 'inbox',
          'openclaw.replica': this.replicaId,
          'openclaw.sender': message.sender,
        },
      },
      () => this.deliver(message),
    );
  }

  private deliver(message: BusMessage): void {
    try {
      this.handler(message);
    } catch (error) {
      this.logger.error({ err: error, type: message.type }, 'bus handler failed');
    }
  }

  private readonly onSubscriberClose = (): void => {
    if (!this.subscribed || this.lostSubscription) return;
    this.lostSubscription = true;
    this.subscriptionLostHandler();
  };

  /**
   * On Redis Cluster, a node left the client's pool (it died, or lost its slots). The connection
   * that holds the topics' classic subscriptions may have been on it: ioredis moves it to another node
   * and subscribes again by itself, but what was published meanwhile is gone, and nothing else says
   * so (the cluster client stays ready). Treated as a resubscription: owners resync.
   */
  private readonly onNodeGone = (): void => {
    if (!this.subscribed || this.closing || this.nodeGoneTimer) return;
    this.nodeGoneTimer = setTimeout(() => {
      this.nodeGoneTimer = undefined;
      if (!this.subscribed || this.closing) return;
      this.topics.relisten();
      this.resubscribedHandler();
    }, NODE_GONE_SETTLE_MS);
    this.nodeGoneTimer.unref();
  };

  private readonly onSubscriberReady = (): void => {
    // ioredis re-subscribes by itself; anything published meanwhile is gone, so owners resync.
    if (!this.lostSubscription) return;
    this.lostSubscription = false;
    this.lastCanaryAt = Date.now();
    this.sendCanary();
    this.resubscribedHandler();
  };

  constructor(options: RedisClusterBusOptions) {
    super();
    this.replicaId = options.replicaId;
    this.keys = options.keys;
    this.publisher = options.publisher;
    this.subscriber = options.subscriber;
    this.logger = options.logger;
    this.canaryIntervalMs = options.canaryIntervalMs ?? 2000;
    this.channel = this.keys.inbox(this.replicaId);
    this.broadcastChannel = this.keys.broadcast();
    this.sharded = isCluster(this.subscriber);
    this.topics = new RedisBusTopics(this.publisher, this.subscriber, this.logger);
  }

  async start(): Promise<void> {
    // Topics arrive as classic messages in both modes; inboxes as sharded ones on Redis Cluster.
    this.subscriber.on('message', this.onRawMessage);
    if (this.sharded) {
      this.subscriber.on('smessage', this.onRawMessage);
      this.subscriber.on('-node', this.onNodeGone);
    }
    this.subscriber.on('close', this.onSubscriberClose);
    this.subscriber.on('ready', this.onSubscriberReady);
    await this.subscribeInbox();
    this.subscribed = true;
    this.startedAt = Date.now();
    this.lastCanaryAt = Date.now();
    this.canaryTimer = setInterval(() => this.sendCanary(), this.canaryIntervalMs);
    this.canaryTimer.unref();
  }

  async send(to: string, message: OutgoingBusMessage): Promise<number> {
    if (to !== this.replicaId && this.publisher.status !== 'ready') {
      throw new GatewayError('UNAVAILABLE', 'the cluster bus is not connected to Redis');
    }
    const envelope = this.stamp(message);
    if (to === this.replicaId && envelope.type !== 'canary') {
      // Messages to ourselves skip Redis: same-replica routing costs no round trip.
      queueMicrotask(() => this.deliver(envelope));
      return 1;
    }
    return this.enqueue(to, JSON.stringify(envelope), envelope.type);
  }

  /**
   * Queues a message for a replica's inbox. The messages for one inbox queued in one iteration of
   * the event loop are published together, as a JSON array (one PUBLISH, one read at the other end):
   * the batch leaves after the iteration's I/O callbacks, so frames that came in on different
   * connections in one wake-up (one caller connection per call) share it too.
   */
  private enqueue(to: string, json: string, type: string): Promise<number> {
    let batch = this.outbox.get(to);
    if (!batch || batch.bytes + json.length > MAX_BATCH_BYTES) {
      if (batch) this.publishBatch(to, batch);
      batch = newBatch();
      this.outbox.set(to, batch);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushOutbox());
      }
    }
    batch.messages.push(json);
    batch.types.push(type);
    batch.bytes += json.length;
    return batch.sent;
  }

  private flushOutbox(): void {
    this.flushScheduled = false;
    for (const [to, batch] of this.outbox) this.publishBatch(to, batch);
    this.outbox.clear();
  }

  private publishBatch(to: string, batch: OutboxBatch, tries = 1): void {
    const payload = batch.messages.length === 1 ? batch.messages[0]! : `[${batch.messages.join(',')}]`;
    this.publishInbox(this.keys.inbox(to), payload).then(
      (receivers) => {
        if (receivers === 0 && this.sharded) {
          if (to === this.replicaId) {
            // Our own inbox has no subscriber on the master that owns its slot now: the slot moved
            // (resharding, failover). Learn the new owner now, which subscribes there again.
            void (this.subscriber as Cluster).refreshSlotsCache?.();
          } else if (tries < INBOX_MOVE_TRIES && !this.closing) {
            // No one received it, so it can be sent again: the inbox's slot may be moving, and its
            // replica subscribing on the new master (within about a second).
            setTimeout(() => this.publishBatch(to, batch, tries + 1), INBOX_MOVE_RETRY_MS);
            return;
          }
        }
        for (const type of batch.types) this.stats.countSent(type);
        batch.resolve(receivers);
      },
      (error: unknown) => {
        this.stats.publishErrors += batch.messages.length;
        batch.reject(new GatewayError('UNAVAILABLE', 'the cluster bus could not publish', { cause: error }));
      },
    );
  }

  async broadcast(message: OutgoingBusMessage): Promise<void> {
    if (this.publisher.status !== 'ready')
      throw new GatewayError('UNAVAILABLE', 'the cluster bus is not connected to Redis');
    try {
      await this.publishInbox(this.broadcastChannel, JSON.stringify(this.stamp(message)));
      this.stats.countSent(message.type);
    } catch (error) {
      this.stats.publishErrors += 1;
      throw new GatewayError('UNAVAILABLE', 'the cluster bus could not publish', { cause: error });
    }
  }

  healthy(): boolean {
    if (!this.subscribed || this.subscriber.status !== 'ready' || this.publisher.status !== 'ready') return false;
    const now = Date.now();
    // A canary is sent every interval; three missed in a row, with nothing else received meanwhile,
    // means the subscriber stopped receiving. Under heavy load the canary may come late while other
    // messages keep arriving: the inbox is then slow, not deaf.
    const heard = Math.max(this.lastCanaryAt, this.lastHeardAt);
    return now - this.startedAt < 3 * this.canaryIntervalMs || now - heard < 3 * this.canaryIntervalMs;
  }

  canaryAgeMs(): number {
    return Date.now() - this.lastCanaryAt;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.canaryTimer) clearInterval(this.canaryTimer);
    // What was sent before the close leaves now, while the publisher is still open.
    if (this.flushScheduled) this.flushOutbox();
    this.subscriber.off('message', this.onRawMessage);
    this.subscriber.off('smessage', this.onRawMessage);
    this.subscriber.off('-node', this.onNodeGone);
    clearTimeout(this.nodeGoneTimer);
    this.subscriber.off('close', this.onSubscriberClose);
    this.subscriber.off('ready', this.onSubscriberReady);
    if (this.subscribed && this.subscriber.status === 'ready') {
      await (this.sharded
        ? Promise.all([this.subscriber.sunsubscribe(this.channel), this.subscriber.sunsubscribe(this.broadcastChannel)])
        : this.subscriber.unsubscribe(this.channel, this.broadcastChannel)
      ).catch(() => undefined);
    }
    this.subscribed = false;
  }

  /** Subscribes the inbox and the broadcast channel (sharded: one command each, as their slots differ). */
  private async subscribeInbox(): Promise<void> {
    if (this.sharded) {
      await Promise.all([this.subscriber.ssubscribe(this.channel), this.subscriber.ssubscribe(this.broadcastChannel)]);
    } else {
      await this.subscriber.subscribe(this.channel, this.broadcastChannel);
    }
  }

  private publishInbox(channel: string, payload: string): Promise<number> {
    return this.sharded
      ? (this.publisher.spublish(channel, payload) as Promise<number>)
      : this.publisher.publish(channel, payload);
  }

  /**
   * Stamps a message. Its trace context is a producer span's, child of the message's own
   * `traceparent` or else of the active context (canaries start none: they would flood the traces).
   */
  private stamp(message: OutgoingBusMessage): BusMessage {
    let traceparent: string | undefined;
    if (message.type !== 'canary' && tracingActive()) {
      const parent = message.traceparent === undefined ? undefined : contextOf(message.traceparent);
      const span = tracer.startSpan(
        `bus publish ${message.type}`,
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            'messaging.system': 'redis',
            'messaging.operation.type': 'send',
            'openclaw.replica': this.replicaId,
          },
        },
        parent,
      );
      traceparent = traceparentOf(contextOfSpan(span, parent));
      span.end();
    }
    // Without tracing, a hop keeps the trace context it was given (or this process's own): no one
    // records its spans, and agents are not shown it.
    traceparent ??=
      message.traceparent !== undefined && isTraceparent(message.traceparent)
        ? message.traceparent
        : this.untracedParent;
    this.sequence += 1;
    return {
      id: `${this.idPrefix}${this.sequence.toString(36)}`,
      sender: this.replicaId,
      ts: Date.now(),
      ...message,
      traceparent,
    } as BusMessage;
  }

  private sendCanary(): void {
    this.healIfDeaf();
    if (this.publisher.status !== 'ready') return;
    this.send(this.replicaId, { type: 'canary' }).catch(() => undefined);
  }

  /**
   * Both connections are up, yet the canary has not come back for four intervals (one after
   * `healthy()` turned false): the subscription itself is gone (a re-subscribe that Redis refused
   * after a reconnect, say), and ioredis will not try again. Subscribe again, at most once per three
   * intervals, and let the owners resync what they may have missed (and subscribe their own channels
   * again).
   */
  private healIfDeaf(): void {
    const now = Date.now();
    const silence = 4 * this.canaryIntervalMs;
    if (this.healing || !this.subscribed || this.closing) return;
    if (this.subscriber.status !== 'ready' || this.publisher.status !== 'ready') return;
    const heard = Math.max(this.lastCanaryAt, this.lastHeardAt);
    if (now - heard < silence || now - this.startedAt < silence) return;
    if (now - this.lastHealAt < 3 * this.canaryIntervalMs) return;
    this.healing = true;
    this.lastHealAt = now;
    this.subscribeInbox().then(
      () => {
        this.healing = false;
        this.logger.warn(
          { silentMs: now - this.lastCanaryAt },
          'bus inbox was silent while connected; subscribed again',
        );
        this.topics.relisten();
        this.resubscribedHandler();
      },
      (error: unknown) => {
        this.healing = false;
        this.logger.warn({ err: (error as Error).message }, 'bus inbox is silent and subscribing again failed');
      },
    );
  }

  private drop(reason: string): void {
    this.stats.dropped += 1;
    this.logger.warn({ reason }, 'dropped an invalid bus message');
  }
}

/** {@link BusTopics} over Redis pub/sub, on the bus's own connections. */
class RedisBusTopics extends TopicHandlers implements BusTopics {
  constructor(
    private readonly publisher: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly logger: Logger,
  ) {
    super();
  }

  async listen(...topics: string[]): Promise<void> {
    if (topics.length === 0) return;
    for (const topic of topics) this.listening.add(topic);
    try {
      await this.subscriber.subscribe(...topics);
    } catch (error) {
      throw new GatewayError('UNAVAILABLE', 'the cluster bus could not subscribe: Redis is unreachable', {
        cause: error,
      });
    }
  }

  stop(...topics: string[]): void {
    for (const topic of topics) this.listening.delete(topic);
    // While the connection is down there is nothing to stop (it subscribes again only to what is listened to).
    if (topics.length === 0 || this.subscriber.status !== 'ready') return;
    this.subscriber.unsubscribe(...topics).catch(() => undefined);
  }

  async publish(topic: string, json: string): Promise<number> {
    try {
      return await this.publisher.publish(topic, json);
    } catch (error) {
      throw new GatewayError('UNAVAILABLE', 'the cluster bus could not publish', { cause: error });
    }
  }

  /** A message on a channel other than the inbox: handed on if this process listens to it. */
  received(topic: string, json: string): void {
    if (this.listening.has(topic)) this.deliver(topic, json, this.logger);
  }

  /** Subscribes every topic listened to again (the bus found its subscription gone). */
  relisten(): void {
    if (this.listening.size > 0) this.subscriber.subscribe(...this.listening).catch(() => undefined);
  }
}

function contextOfSpan(span: Span, parent: Context | undefined): Context {
  return trace.setSpan(parent ?? context.active(), span);
}

/**
 * On Redis Cluster, a message no replica received is published again this many times in all,
 * this far apart, before its sender is told so: an inbox whose slot just moved is subscribed again
 * on its new master within about a second.
 */
const INBOX_MOVE_TRIES = 5;
/** How long after a node left a cluster client's pool the owners resync (ioredis moves subscriptions first). */
const NODE_GONE_SETTLE_MS = 500;
const INBOX_MOVE_RETRY_MS = 250;

/** Most bytes of messages published together to one inbox; a bigger batch is split. */
const MAX_BATCH_BYTES = 512 * 1024;

/** Messages for one inbox, published together; every sender waits for the one publish. */
interface OutboxBatch {
  messages: string[];
  types: string[];
  bytes: number;
  sent: Promise<number>;
  resolve: (receivers: number) => void;
  reject: (error: GatewayError) => void;
}

function newBatch(): OutboxBatch {
  let resolve!: (receivers: number) => void;
  let reject!: (error: GatewayError) => void;
  const sent = new Promise<number>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  // A failed publish is handled by each sender; the batch's own promise must not go unhandled.
  sent.catch(() => undefined);
  return { messages: [], types: [], bytes: 0, sent, resolve, reject };
}
