import { createHash, timingSafeEqual } from 'node:crypto';
import { GatewayError, type WireError } from '@openclaw/protocol';
import { z } from 'zod';
import { isRegionName, type RegionPeer } from '../config/region-peers';
import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { traceparentOf } from '../telemetry/tracing';

/** A call forwarded to another region, as the link sends it. */
export interface ForwardedCall {
  /** The call's id in the region it came from; the receiving region runs it under the same id. */
  taskId: string;
  /** The region it came from. */
  region: string;
  tenant: string;
  principal: string;
  agent: string;
  task: string;
  data: unknown;
  /** What is left of the caller's deadline when it is sent (regions' clocks may differ). */
  timeoutMs: number;
  /** The calling agent, the principal it acts for and the chain of a delegation, as the agent is told. */
  from?: { agent?: string; onBehalfOf?: string; chain?: string[] };
  /** The caller's roles, for the receiving region's governance rules. */
  roles?: string[];
}

/** What a region answers to a forwarded call. */
export type ForwardedAnswer = { ok: true; output: unknown } | { ok: false; error: WireError };

/** A forwarded call's body, checked by the region that receives it. */
export const ForwardedCallSchema = z
  .object({
    taskId: z.string().min(1).max(128),
    region: z.string().refine(isRegionName, 'expected a region name'),
    tenant: z.string().min(1).max(128),
    principal: z.string().min(1).max(256),
    agent: z.string().min(1).max(128),
    task: z.string().min(1).max(128),
    data: z.unknown(),
    timeoutMs: z.number().int().min(1).max(3_600_000),
    from: z
      .object({
        agent: z.string().max(128).optional(),
        onBehalfOf: z.string().max(256).optional(),
        chain: z.array(z.string().max(256)).max(16).optional(),
      })
      .strict()
      .optional(),
    roles: z.array(z.string().max(64)).max(32).optional(),
  })
  .strict();

const AgentListSchema = z.object({ region: z.string(), agents: z.array(z.string().max(300)).max(100_000) });

/** Options of {@link RegionLink}. */
export interface RegionLinkOptions {
  /** This region's name. */
  region: string;
  peers: readonly RegionPeer[];
  /** The secret every linked region shares: a forwarded call or a directory read without it is refused. */
  secret: string;
  /** This region's Redis (its directory of the other regions' agents lives there). */
  redis: RedisClient;
  keys: RedisKeys;
  replicaId: string;
  logger: Logger;
  /** How often the linked regions' agents are read. Default 2000 ms; kept three times as long. */
  refreshMs?: number;
}

/**
 * The link of a region to the regions it is linked with. Each region keeps, in its own Redis, a
 * directory of which linked region can run which agent: one replica per round (a lock in Redis)
 * reads every linked region's agents (`GET /v1/regions/agents`) and stores them, kept for three
 * rounds, so a region that stops answering drops out of the directory by itself. A call for an
 * agent with no instance here goes to the first linked region (in the order configured) that can
 * run it: one authenticated POST (`/v1/regions/calls`) with the call, its caller and what is left of
 * its deadline. The receiving region applies its own governance and audit, and never forwards it
 * again (no loops).
 */
export class RegionLink {
  readonly region: string;
  readonly peers: readonly RegionPeer[];
  private readonly secretDigest: Buffer;
  private readonly authorization: string;
  private readonly refreshMs: number;
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;
  /** When each peer's last failure was logged (a peer that is down is logged once a minute). */
  private readonly failureLogged = new Map<string, number>();

  constructor(private readonly options: RegionLinkOptions) {
    this.region = options.region;
    this.peers = options.peers;
    this.secretDigest = digest(options.secret);
    this.authorization = `Bearer ${options.secret}`;
    this.refreshMs = options.refreshMs ?? 2000;
  }

  /** Starts reading the linked regions' agents, now and every round. */
  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Whether an `Authorization` header carries the link's secret (compared in constant time). */
  admits(authorization: string | undefined): boolean {
    const match = /^Bearer (.+)$/.exec(authorization ?? '');
    return match !== null && timingSafeEqual(digest(match[1]!), this.secretDigest);
  }

  /**
   * The first linked region whose agents, as last read, include this one (a qualified name).
   * @throws {GatewayError} `UNAVAILABLE` when this region's Redis cannot be reached.
   */
  async regionOf(qualifiedAgent: string): Promise<RegionPeer | undefined> {
    if (this.peers.length === 0) return undefined;
    const pipeline = this.options.redis.pipeline();
    for (const peer of this.peers) pipeline.sismember(this.options.keys.regionAgents(peer.name), qualifiedAgent);
    const results = (await pipeline.exec()) ?? [];
    for (const [i, [error, found]] of results.entries()) {
      if (error) throw new GatewayError('UNAVAILABLE', 'the region directory (Redis) is unavailable', { cause: error });
      if (found === 1) return this.peers[i];
    }
    return undefined;
  }

  /**
   * Runs a call in a linked region. @returns the agent's output.
   * @throws {GatewayError} the receiving region's error as it answered it (`POLICY_DENIED`, `TIMEOUT`,
   * `AGENT_ERROR`, ...); `CANCELED` when `signal` aborts; `AGENT_UNAVAILABLE` (retryable) when the
   * region cannot be reached or refuses the link.
   */
  async forward(peer: RegionPeer, call: ForwardedCall, signal: AbortSignal): Promise<unknown> {
    const deadline = AbortSignal.timeout(call.timeoutMs);
    let response: Response;
    let text: string;
    try {
      const traceparent = traceparentOf();
      response = await fetch(`${peer.url}/v1/regions/calls`, {
        method: 'POST',
        headers: {
          authorization: this.authorization,
          'content-type': 'application/json',
          'x-openclaw-region': this.region,
          ...(traceparent === undefined ? {} : { traceparent }),
        },
        body: JSON.stringify(call),
        signal: AbortSignal.any([signal, deadline]),
      });
      text = await response.text();
    } catch (error) {
      if (signal.aborted) throw new GatewayError('CANCELED', 'the task was canceled');
      if (deadline.aborted) {
        throw new GatewayError(
          'TIMEOUT',
          `region '${peer.name}' did not answer task '${call.task}' within its deadline`,
        );
      }
      throw new GatewayError('AGENT_UNAVAILABLE', `region '${peer.name}' could not be reached`, {
        cause: error,
        dispatched: false,
        details: { region: peer.name },
      });
    }
    if (response.status !== 200) {
      throw new GatewayError('AGENT_UNAVAILABLE', `region '${peer.name}' refused the call (HTTP ${response.status})`, {
        details: { region: peer.name, status: response.status, body: text.slice(0, 512) },
      });
    }
    let answer: ForwardedAnswer;
    try {
      answer = JSON.parse(text) as ForwardedAnswer;
    } catch {
      throw new GatewayError('AGENT_UNAVAILABLE', `region '${peer.name}' answered with a body that is not JSON`);
    }
    if (answer.ok) return answer.output;
    if (typeof answer.error?.code !== 'string') {
      throw new GatewayError('AGENT_UNAVAILABLE', `region '${peer.name}' answered with no output and no error`);
    }
    throw GatewayError.fromWire(answer.error);
  }

  /** One round: reads every linked region's agents, if no other replica of this region does now. */
  private async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const { redis, keys, replicaId } = this.options;
      const mine = await redis
        .set(keys.regionRefreshLock(), replicaId, 'PX', this.refreshMs - 100, 'NX')
        .catch(() => null);
      if (mine !== 'OK') return;
      await Promise.all(this.peers.map((peer) => this.readPeer(peer)));
    } finally {
      this.refreshing = false;
    }
  }

  private async readPeer(peer: RegionPeer): Promise<void> {
    const { redis, keys } = this.options;
    try {
      const response = await fetch(`${peer.url}/v1/regions/agents`, {
        headers: { authorization: this.authorization, 'x-openclaw-region': this.region },
        signal: AbortSignal.timeout(this.refreshMs),
      });
      if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
      const list = AgentListSchema.parse(await response.json());
      if (list.region !== peer.name) throw new Error(`it calls itself '${list.region}'`);
      const key = keys.regionAgents(peer.name);
      const multi = redis.multi().del(key);
      if (list.agents.length > 0) multi.sadd(key, ...list.agents);
      await multi.pexpire(key, 3 * this.refreshMs).exec();
      this.failureLogged.delete(peer.name);
    } catch (error) {
      const last = this.failureLogged.get(peer.name) ?? 0;
      if (Date.now() - last >= 60_000) {
        this.failureLogged.set(peer.name, Date.now());
        this.options.logger.warn(
          { region: peer.name, url: peer.url, err: (error as Error).message },
          'could not read the agents of a linked region; its entries expire',
        );
      }
    }
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
