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
