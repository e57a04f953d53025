/**
 * Every Redis key and channel name the cluster uses, in one place.
 *
 * Names carry Redis Cluster hash tags so the design can move to a cluster without a rewrite:
 * - the agent registry (`{<prefix>:reg}`) shares one slot, because routing reads it atomically in
 *   one Lua script; it is small (a few keys per agent instance);
 * - each task record has its own tag, so task records spread over the shards;
 * - each replica's inbox channel has its own tag, ready for sharded pub/sub (`SSUBSCRIBE`).
 */
export class RedisKeys {
  /** The key prefix, e.g. `openclaw`. */
  readonly prefix: string;
  /** Prefix of every registry key, including the hash tag. */
  readonly registry: string;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.registry = `${prefix}:{${prefix}:reg}:`;
  }

  /** Hash: a cluster-wide token bucket of a principal or a tenant (in the registry's slot: the pick script charges it). */
  rateBucket(scope: 'principal' | 'tenant', id: string): string {
    return `${this.registry}rate:${scope}:${id}`;
  }

  /** Set of the ids of replicas that have registered (alive or not yet cleaned up). */
  replicas(): string {
    return `${this.registry}replicas`;
  }

  /** String with a TTL: present while the replica is alive. */
  replicaAlive(replicaId: string): string {
    return `${this.registry}replica:${replicaId}:alive`;
  }

  /** Set of the agent instance ids attached to a replica. */
  replicaInstances(replicaId: string): string {
    return `${this.registry}replica:${replicaId}:instances`;
  }

  /** Set of names of agents that have (or recently had) WebSocket instances. */
  agents(): string {
    return `${this.registry}agents`;
  }

  /** Set of the instance ids of an agent. */
  agentInstances(agent: string): string {
    return `${this.registry}agent:${agent}:instances`;
  }

  /** Hash describing one agent instance: agent, replica, concurrency, tasks, meta, registeredAt. */
  instance(instanceId: string): string {
    return `${this.registry}instance:${instanceId}`;
  }

  /**
   * Sorted set of the tasks an instance held, scored by the time their reservation expired. Written
   * by earlier versions only (slots are now counted by the replica holding the instance); removed
   * with the instance.
   */
  instanceLoad(instanceId: string): string {
    return `${this.registry}instance:${instanceId}:load`;
  }

  /** Counter bumped by every change of the registry: replicas compare it with the copy they route from. */
  registryVersion(): string {
    return `${this.registry}version`;
  }

  /** Sorted set of the agents moving from a draining replica, scored by the time the marker ends. */
  movingAgents(): string {
    return `${this.registry}moving-agents`;
  }

  /** Set of names of HTTP agents. */
  httpAgents(): string {
    return `${this.registry}http-agents`;
  }

  /** Hash describing an HTTP agent: url, tasks, timeoutMs, createdAt. */
  httpAgent(agent: string): string {
    return `${this.registry}http-agent:${agent}`;
  }

  /** String: the task id a caller's idempotency key stands for (`digest` is a hash of tenant, principal and key). */
  idempotency(digest: string): string {
    return `${this.prefix}:{idem:${digest}}`;
  }

  /** Set of the ids of stored API keys. */
  apiKeys(): string {
    return `${this.prefix}:{${this.prefix}:auth}:apikeys`;
  }

  /** Hash: one stored API key (its HMAC, never the key). */
  apiKey(id: string): string {
    return `${this.prefix}:{${this.prefix}:auth}:apikey:${id}`;
  }

  /** Set of the ids of revoked API keys, which replicas check their live connections against. */
  revokedApiKeys(): string {
    return `${this.prefix}:{${this.prefix}:auth}:apikeys:revoked`;
  }

  /** Sorted set: a principal's live connections on every replica, scored by entry expiry. */
  connections(principal: string): string {
    return `${this.prefix}:{conns:${principal}}`;
  }

  /** Counter of recent failed authentications from an address. */
  authFailures(address: string): string {
    return `${this.prefix}:{${this.prefix}:auth}:authfail:${address}`;
  }

  /** Present while an address is locked out. */
  authLock(address: string): string {
    return `${this.prefix}:{${this.prefix}:auth}:authlock:${address}`;
  }

  /** Hash: the cluster's RBAC policy (text, version, appliedBy, appliedAt). */
  policy(): string {
    return `${this.prefix}:policy`;
  }

  /** Stream: a tenant's audit trail. */
  audit(tenant: string): string {
    return `${this.prefix}:{audit:${tenant}}`;
  }

  /** String: the chain hash of the last entry of a tenant's audit trail (same slot as the stream). */
  auditHead(tenant: string): string {
    return `${this.prefix}:{audit:${tenant}}:head`;
  }

  /** String: the hash the first remaining entry follows, after retention trimmed older ones. */
  auditAnchor(tenant: string): string {
    return `${this.prefix}:{audit:${tenant}}:anchor`;
  }

  /**
   * String: the sealed head of a tenant's audit trail, `{seq, hash, mac}`: the sequence number and
   * hash of the last sequenced entry, with a MAC under the audit secret (same slot as the stream).
   */
  auditSealedHead(tenant: string): string {
    return `${this.prefix}:{audit:${tenant}}:sealed-head`;
  }

  /**
   * String: the sealed anchor of a tenant's audit trail after retention trimmed it, `{seq, prev, mac}`:
   * the sequence number of the first retained entry and the hash it follows, with a MAC.
   */
  auditSealedAnchor(tenant: string): string {
    return `${this.prefix}:{audit:${tenant}}:sealed-anchor`;
  }

  /** String (with a TTL): the process moving a tenant's audit entries to the archive, one at a time. */
  auditArchiveLock(tenant: string): string {
    return `${this.prefix}:{audit:${tenant}}:archiving`;
  }

  /** Set of tenants that have an audit trail. */
  auditTenants(): string {
    return `${this.prefix}:audit-tenants`;
  }

  /** Hash: the record of a task. */
  task(taskId: string): string {
    return `${this.prefix}:{task:${taskId}}`;
  }

  /**
   * Hash: the records of the sync calls created in one minute (`slice`, epoch minutes) whose task ids
   * fall in one `shard`, field: task id, value: the record as JSON. The minute buckets expire whole.
   * Calls with an idempotencyKey (`keyed`) are kept apart, as long as their keys.
   */
  callRecords(slice: number, shard: number, keyed = false): string {
    return `${this.prefix}:{calls:${shard}}:${slice}${keyed ? ':k' : ''}`;
  }

  /** Stream: the events of an async task (status changes and progress), in the task's slot. */
  taskEvents(taskId: string): string {
    return `${this.prefix}:{task:${taskId}}:events`;
  }

  /** Sorted set: a tenant's async tasks in one status, scored by their last change (all statuses in one slot). */
  taskIndex(tenant: string, status: string): string {
    return `${this.prefix}:{tasks:${tenant}}:${status}`;
  }

  /** String: the async task a tenant's idempotency key stands for (`digest` hashes tenant and key). */
  asyncIdempotency(digest: string): string {
    return `${this.prefix}:{idem:async:${digest}}`;
  }

  /** Pub/sub channel: events of the async tasks a principal submitted (`digest` hashes tenant and principal). */
  principalEvents(digest: string): string {
    return `${this.prefix}:{tev:p:${digest}}`;
  }

  /** Pub/sub channel: events of one async task, for watchers other than its submitter. */
  taskChannel(taskId: string): string {
    return `${this.prefix}:{tev:t:${taskId}}`;
  }

  /** Pub/sub channel: a tenant's operator notifications (tasks waiting for a human). */
  operatorEvents(tenant: string): string {
    return `${this.prefix}:{tev:ops:${tenant}}`;
  }

  /** Pub/sub channel: every status change of a tenant's async tasks (for `tasks.watch`: dashboards). */
  taskActivity(tenant: string): string {
    return `${this.prefix}:{tev:all:${tenant}}`;
  }

  /**
   * Sorted set: replicas that report to the cluster view, scored by when their report expires. The
   * processes' heartbeats share one slot: each is written together with its index in one transaction.
   */
  replicaReports(): string {
    return `${this.prefix}:{${this.prefix}:procs}:replica-reports`;
  }

  /** String (JSON, with a TTL): what a replica last reported about itself (`openclaw gateway status`). */
  replicaReport(replicaId: string): string {
    return `${this.prefix}:{${this.prefix}:procs}:replica-report:${replicaId}`;
  }

  /** Sorted set: live worker processes, scored by when their heartbeat expires. */
  workers(): string {
    return `${this.prefix}:{${this.prefix}:procs}:workers`;
  }

  /** Hash: what a worker reports about itself (id, host, pid, startedAt, concurrency, active). */
  worker(workerId: string): string {
    return `${this.prefix}:{${this.prefix}:procs}:worker:${workerId}`;
  }

  /** BullMQ's key prefix: every queue key shares one hash tag, as BullMQ's scripts need. */
  queuePrefix(): string {
    return `${this.prefix}:{q}`;
  }

  /** Hash: the input schemas an agent declared (task name → JSON Schema), in the registry's slot. */
  agentSchemas(tenant: string, agent: string): string {
    return `${this.registry}schemas:${tenant}/${agent}`;
  }

  /** String: a governance budget's counter for one subject in one window. */
  budget(budget: string, subject: string, window: number): string {
    return `${this.prefix}:{budget:${budget}:${subject}}:${window}`;
  }

  /** Hash: one approval (all of a tenant's approvals share a slot, so a decision updates its indexes atomically). */
  approval(tenant: string, approvalId: string): string {
    return `${this.prefix}:{approvals:${tenant}}:${approvalId}`;
  }

  /** Sorted set: a tenant's pending approvals, scored by when they expire. */
  approvalsPending(tenant: string): string {
    return `${this.prefix}:{approvals:${tenant}}:pending`;
  }

  /** Set of the tenants that have had approvals (for metrics). */
  approvalTenants(): string {
    return `${this.prefix}:approval-tenants`;
  }

  /** Sorted set: a tenant's approvals, scored by when they were asked for. */
  approvalsIndex(tenant: string): string {
    return `${this.prefix}:{approvals:${tenant}}:index`;
  }

  /** Pub/sub channel every replica and worker subscribes to: news for all (the registry changed). */
  broadcast(): string {
    return `${this.prefix}:{broadcast}`;
  }

  /** The common part of the keys of one namespace of a tenant's shared state (one slot). */
  private stateBase(tenant: string, namespace: string): string {
    return `${this.prefix}:{st:${tenant}:${namespace}}`;
  }

  /** Hash: one key of shared state (`v` its value as JSON, `ver`, `at`, `exp`). */
  stateValue(tenant: string, namespace: string, key: string): string {
    return `${this.stateBase(tenant, namespace)}:k:${key}`;
  }

  /** Sorted set, all scores 0: the keys of a namespace, in byte order (`state.list`). */
  stateIndex(tenant: string, namespace: string): string {
    return `${this.stateBase(tenant, namespace)}:index`;
  }

  /** Sorted set: the keys of a namespace that expire, scored by when (Redis time, ms). */
  stateExpiry(tenant: string, namespace: string): string {
    return `${this.stateBase(tenant, namespace)}:exp`;
  }

  /** Hash: the version of each key of a namespace that expires (its `expire` event names it). */
  stateExpiryVersions(tenant: string, namespace: string): string {
    return `${this.stateBase(tenant, namespace)}:expv`;
  }

  /**
   * Sorted set: a tenant's namespaces of shared state, scored by when each last went from empty to
   * holding a key (the view of namespaces; pruned when one stays empty).
   */
  stateNamespaces(tenant: string): string {
    return `${this.prefix}:{stns:${tenant}}`;
  }

  /** Pub/sub channel: the changes of a namespace's keys (`state.changed`). */
  stateChannel(tenant: string, namespace: string): string {
    return `${this.stateBase(tenant, namespace)}:ch`;
  }

  /** String: an agent's result-cache policy (JSON `{tasks, ttlMs}`), from its latest registration. */
  cachePolicy(tenant: string, agent: string): string {
    return `${this.prefix}:{cache:${tenant}:${agent}}:policy`;
  }

  /** String: a cached output (JSON), by the digest of its task and canonical input. */
  cacheEntry(tenant: string, agent: string, digest: string): string {
    return `${this.prefix}:{cache:${tenant}:${agent}}:e:${digest}`;
  }

  /** Hash: the digests of an agent's cached outputs, and their tasks (to invalidate by task). */
  cacheIndex(tenant: string, agent: string): string {
    return `${this.prefix}:{cache:${tenant}:${agent}}:index`;
  }

  /** String: an identical call is in flight (single flight), until it ends or its deadline. */
  cacheFlight(tenant: string, agent: string, digest: string): string {
    return `${this.prefix}:{cache:${tenant}:${agent}}:f:${digest}`;
  }

  /** Pub/sub channel: the outcome of a call in flight, for the identical calls waiting for it. */
  cacheChannel(tenant: string, agent: string, digest: string): string {
    return `${this.prefix}:{cache:${tenant}:${agent}}:c:${digest}`;
  }

  /**
   * Hash: a tenant's result-cache counters since the cluster began, summed over its processes: fields
   * `<counter>:<agent>`, counters `hits`, `misses`, `shared` and `stored`.
   */
  cacheStats(tenant: string): string {
    return `${this.prefix}:{cachestats:${tenant}}`;
  }

  /** Sorted set: a memory thread's entries, scored by sequence number (`<seq> <json>`). */
  memoryLog(tenant: string, thread: string): string {
    return `${this.prefix}:{mem:${tenant}:${thread}}:log`;
  }

  /** String: the last sequence number of a memory thread (kept when the thread is cleared). */
  memorySeq(tenant: string, thread: string): string {
    return `${this.prefix}:{mem:${tenant}:${thread}}:seq`;
  }

  /** Sorted set: the namespaces (`<tenant>/<namespace>`) with keys that expire, by the soonest. */
  stateExpiring(): string {
    return `${this.prefix}:{state}:expiring`;
  }

  /** String: which process sweeps expired state keys this round. */
  stateSweepLock(): string {
    return `${this.prefix}:{state}:sweep`;
  }

  /** Set: the qualified names of the agents a linked region can run, as this region last read them. */
  regionAgents(region: string): string {
    return `${this.prefix}:{regions}:agents:${region}`;
  }

  /** String: which replica reads the linked regions' agents this round (expires with the round). */
  regionRefreshLock(): string {
    return `${this.prefix}:{regions}:refresh`;
  }

  /** Pub/sub channel: a replica's own inbox. Only that replica subscribes to it. */
  inbox(replicaId: string): string {
    return `${this.prefix}:{inbox:${replicaId}}`;
  }
}
