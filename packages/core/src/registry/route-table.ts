import type { RedisClient } from '../redis/redis-connection';
import type { RedisKeys } from '../redis/redis-keys';
import type { Logger } from '../telemetry/logger';
import { DIRECTORY, LIVENESS } from './registry-scripts';

/** An agent instance as routing sees it. */
export interface RoutedInstance {
  id: string;
  /** Qualified agent name (`<tenant>/<name>`). */
  agent: string;
  replica: string;
  concurrency: number;
  /** Tasks it handles; undefined: any task. */
  tasks: ReadonlySet<string> | undefined;
}

/** An HTTP agent as routing sees it. */
export interface RoutedHttpAgent {
  url: string;
  tasks: ReadonlySet<string> | undefined;
  timeoutMs: number | undefined;
}

/** Options of {@link RouteTable}. */
export interface RouteTableOptions {
  /** Command connection (not owned). */
  redis: RedisClient;
  keys: RedisKeys;
  logger: Logger;
  /** How often the registry version and the replicas' heartbeats are checked. */
  checkIntervalMs: number;
}

interface DirectoryJson {
  version: string;
  alive: string[] | Record<string, never>;
  instances: [string, string, string, number, string][] | Record<string, never>;
  moving: [string, number][] | Record<string, never>;
  http: [string, string, string, string][] | Record<string, never>;
}

/**
 * The copy of the agent registry each replica and worker routes from, so that routing a call reads
 * no Redis. The registry in Redis stays the truth: every write to it bumps its version and is
 * announced on the broadcast channel ({@link changed}), and the copy is loaded again whole (one
 * script) when the version moved; a periodic check of the version and of the replicas' heartbeats
 * ({@link check}) covers announcements lost while a subscription was down. A lookup that finds
 * nothing usable loads the copy again before answering ({@link refresh}), so an agent registered
 * a moment ago on another replica is found.
 */
export class RouteTable {
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  private readonly logger: Logger;
  private readonly checkIntervalMs: number;
  private byAgent = new Map<string, RoutedInstance[]>();
  private alive = new Set<string>();
  private moving = new Map<string, number>();
  private http = new Map<string, RoutedHttpAgent>();
  private version: string | undefined;
  private loading: Promise<void> | undefined;
  /** Another load was asked for while one ran: it runs once that one ends. */
  private reloadAfter = false;
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(options: RouteTableOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.logger = options.logger;
    this.checkIntervalMs = options.checkIntervalMs;
  }

  /** Whether the copy was loaded at least once. */
  get loaded(): boolean {
    return this.version !== undefined;
  }

  /** Loads the copy (if Redis is there) and starts the periodic check. */
  async start(): Promise<void> {
    if (this.redis.status === 'ready') await this.refresh().catch(() => undefined);
    this.timer = setInterval(() => void this.check(), this.checkIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The registry changed (an announcement arrived, or this process wrote it): load the copy again. */
  changed(): void {
    void this.refresh().catch(() => undefined);
  }

  /**
   * Loads the copy again; concurrent callers share one load, and a call made while a load runs gets
   * a load that starts after it (so it sees every write made before the call).
   */
  refresh(): Promise<void> {
    if (this.loading) {
      this.reloadAfter = true;
      return this.loading.then(() => this.loading ?? undefined);
    }
    this.loading = this.load().finally(() => {
      this.loading = undefined;
      if (this.reloadAfter) {
        this.reloadAfter = false;
        void this.refresh().catch(() => undefined);
      }
    });
    return this.loading;
  }

  /** Whether the registry in Redis moved on since the copy was loaded (one GET). */
  async changedSinceLoad(): Promise<boolean> {
    return ((await this.redis.get(this.keys.registryVersion())) ?? '0') !== this.version;
  }

  /** Instances of an agent (qualified name), as last loaded. */
  instancesOf(agent: string): readonly RoutedInstance[] {
    return this.byAgent.get(agent) ?? NONE;
  }

  /** Whether a replica's heartbeat was current at the last check. */
  isAlive(replicaId: string): boolean {
    return this.alive.has(replicaId);
  }

  /** Whether an agent's instances are moving from a draining replica. */
  isMoving(agent: string): boolean {
    const until = this.moving.get(agent);
    return until !== undefined && until > Date.now();
  }

  httpAgent(agent: string): RoutedHttpAgent | undefined {
    return this.http.get(agent);
  }

  /** Checks the registry version (loading the copy again when it moved) and the heartbeats. */
  private async check(): Promise<void> {
    if (this.checking || this.redis.status !== 'ready') return;
    this.checking = true;
    try {
      const reply = (await LIVENESS.run(
        this.redis,
        this.keys.replicas(),
        this.keys.registryVersion(),
        this.keys.registry,
      )) as string[];
      if (reply[0] !== this.version) await this.refresh();
      else this.alive = new Set(reply.slice(1));
    } catch (error) {
      this.logger.debug({ err: (error as Error).message }, 'registry check failed');
    } finally {
      this.checking = false;
    }
  }

  private async load(): Promise<void> {
    const json = (await DIRECTORY.run(
      this.redis,
      this.keys.agents(),
      this.keys.httpAgents(),
      this.keys.replicas(),
      this.keys.registryVersion(),
      this.keys.movingAgents(),
      this.keys.registry,
    )) as string;
    const directory = JSON.parse(json) as DirectoryJson;
    const byAgent = new Map<string, RoutedInstance[]>();
    for (const [id, agent, replica, concurrency, tasks] of listOf(directory.instances)) {
      const list = byAgent.get(agent) ?? [];
      list.push({ id, agent, replica, concurrency, tasks: taskSet(tasks) });
      byAgent.set(agent, list);
    }
    const http = new Map<string, RoutedHttpAgent>();
    for (const [name, url, tasks, timeoutMs] of listOf(directory.http)) {
      http.set(name, { url, tasks: taskSet(tasks), timeoutMs: timeoutMs === '' ? undefined : Number(timeoutMs) });
    }
    this.byAgent = byAgent;
    this.http = http;
    this.alive = new Set(listOf(directory.alive));
    this.moving = new Map(listOf(directory.moving));
    this.version = directory.version;
  }
}

const NONE: readonly RoutedInstance[] = [];

/** cjson encodes an empty table as `{}`. */
function listOf<T>(value: T[] | Record<string, never>): T[] {
  return Array.isArray(value) ? value : [];
}

/** Tasks as stored (newline-delimited on both ends; empty for any task). */
function taskSet(encoded: string): ReadonlySet<string> | undefined {
  if (encoded === '') return undefined;
  return new Set(encoded.split('\n').filter((t) => t !== ''));
}
