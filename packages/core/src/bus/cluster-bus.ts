import type { BusMessage, OutgoingBusMessage } from './bus-message';

/** What a bus has carried since the process started (for metrics). */
export class BusStats {
  /** Messages published, by type. */
  readonly sent = new Map<string, number>();
  /** Valid messages received, by type. */
  readonly received = new Map<string, number>();
  /** Publishes that failed (Redis unreachable). */
  publishErrors = 0;
  /** Inbound messages that were not valid bus messages. */
  dropped = 0;

  countSent(type: string): void {
    this.sent.set(type, (this.sent.get(type) ?? 0) + 1);
  }

  countReceived(type: string): void {
    this.received.set(type, (this.received.get(type) ?? 0) + 1);
  }
}

/** Receives every valid message addressed to this replica. */
export type BusHandler = (message: BusMessage) => void;

/** Receives a message published on a topic this process listens to: the topic, and the message's JSON text. */
export type TopicHandler = (topic: string, json: string) => void;

/**
 * Topics: channels of events that any number of processes listen to, each only while it needs
 * them (a principal's task events, one task's watchers, a tenant's operators, a tenant's activity;
 * named by `RedisKeys`). Delivery is at most once, as for the inbox: a listener that may have missed
 * messages reads what it needs from where they are kept (a task's events from its stream).
 *
 * The task ledger's scripts publish a task's events on these topics themselves, in the same atomic
 * step that records the change: an event is then published if and only if its change was made, even
 * when the process that made it dies right after.
 */
export interface BusTopics {
  /**
   * Starts listening to topics (again, for those it listens to already).
   * @throws {GatewayError} `UNAVAILABLE` when the bus cannot subscribe now.
   */
  listen(...topics: string[]): Promise<void>;
  /** Stops listening to topics. */
  stop(...topics: string[]): void;
  /**
   * Publishes a message (JSON text) on a topic. @returns how many processes listen to it.
   * @throws {GatewayError} `UNAVAILABLE` when the bus cannot publish now.
   */
  publish(topic: string, json: string): Promise<number>;
  /** Adds a handler of the messages on the topics this process listens to. */
  onMessage(handler: TopicHandler): void;
  /** Removes a handler added by {@link BusTopics.onMessage}. */
  offMessage(handler: TopicHandler): void;
}

/** The handlers of a process's topics, as every {@link BusTopics} keeps them. */
export class TopicHandlers {
  private readonly handlers = new Set<TopicHandler>();
  /** The topics listened to, to listen again after the subscription was lost and is back. */
  protected readonly listening = new Set<string>();

  onMessage(handler: TopicHandler): void {
    this.handlers.add(handler);
  }

  offMessage(handler: TopicHandler): void {
    this.handlers.delete(handler);
  }

  /** Hands a message on a topic to the handlers; a failing handler does not stop the others. */
  protected deliver(topic: string, json: string, logger?: { error(o: object, m: string): void }): void {
    for (const handler of this.handlers) {
      try {
        handler(topic, json);
      } catch (error) {
        logger?.error({ err: error, topic }, 'topic handler failed');
      }
    }
  }
}

/**
 * Replica-to-replica messaging: each replica has one inbox; a message goes to exactly one replica.
 * Delivery is at most once (pub/sub): callers hold their own deadlines.
 */
export interface ClusterBus {
  /** This replica's id: the inbox it receives on. */
  readonly replicaId: string;
  /** Subscribes to this replica's inbox. */
  start(): Promise<void>;
  /**
   * Sends one message to one replica's inbox.
   * @returns how many subscribers received it: 0 means the target replica is not listening.
   * @throws {GatewayError} `UNAVAILABLE` when the bus cannot send now.
   */
  send(to: string, message: OutgoingBusMessage): Promise<number>;
  /**
   * Sends one message to every replica and worker (the broadcast channel), this process included.
   * @throws {GatewayError} `UNAVAILABLE` when the bus cannot send now.
   */
  broadcast(message: OutgoingBusMessage): Promise<void>;
  /** Sets the handler of inbound messages. */
  onMessage(handler: BusHandler): void;
  /** Called after the subscription was lost and is back: messages may have been missed in between. */
  onResubscribed(handler: () => void): void;
  /** Called the moment the subscription is lost: messages sent to this replica from now on are gone. */
  onSubscriptionLost(handler: () => void): void;
  /** Whether publishing and receiving both work now. */
  healthy(): boolean;
  /** Milliseconds since this replica last received its own canary (how long it may have been deaf). */
  canaryAgeMs(): number;
  /** Event topics, beside the replica's inbox. */
  readonly topics: BusTopics;
  readonly stats: BusStats;
  close(): Promise<void>;
}

/**
 * The handlers a bus calls, as every {@link ClusterBus} keeps them: set by its owner, called on a
 * message, on a lost subscription and on one restored.
 */
export abstract class BusHandlers {
  protected handler: BusHandler = () => undefined;
  protected resubscribedHandler: () => void = () => undefined;
  protected subscriptionLostHandler: () => void = () => undefined;

  onMessage(handler: BusHandler): void {
    this.handler = handler;
  }

  onResubscribed(handler: () => void): void {
    this.resubscribedHandler = handler;
  }

  onSubscriptionLost(handler: () => void): void {
    this.subscriptionLostHandler = handler;
  }
}
