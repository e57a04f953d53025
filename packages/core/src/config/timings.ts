/**
 * The cluster's fixed timings, in one place: how often things are refreshed, how long things are
 * kept or waited for. They are constants, not settings, because the parts of the cluster agree on
 * them (a report's lifetime and its refresh interval, a lock and its stalled check); an operator
 * reads them to know what to expect. `docs/configuration.md` ("Fixed timings") lists every one of
 * them, and a test keeps that table true.
 */
export const TIMINGS = {
  /** How often each replica writes its report (agents, connections, load); a report lives three times this. */
  replicaReportIntervalMs: 2_000,
  /** How long a connection's entry (per-principal connection caps) lives without a refresh; refreshed every third of it. */
  connectionEntryTtlMs: 60_000,
  /** How often live connections are checked against revoked and expired credentials. */
  credentialCheckMs: 1_000,
  /** How long a token introspection answer is reused (a revoked token is refused by then). */
  introspectionCacheMs: 60_000,
  /** How long cluster-wide figures read from Redis for `/metrics` (queue depths, pending approvals) are reused. */
  clusterReadCacheMs: 2_000,
  /** How long a replica uses an agent's input schemas before reading them again (in the background). */
  inputSchemaCacheMs: 2_000,
  /** The input-schema validator's timeout: only a replica's first read of an agent's schemas waits for Redis. */
  inputSchemaTimeoutMs: 1_000,
  /** How far past its budget a model validator's request may run before it is dropped (its verdict is `timeout` at the budget). */
  modelValidatorGraceMs: 1_000,
  /** How long a replica caches an agent's registered retry policy (other replicas' registrations show after this). */
  agentRetryPolicyCacheMs: 5_000,
  /** How long a sync call's `idempotencyKey` is kept, and that call's record with it. */
  syncIdempotencyTtlMs: 3_600_000,
  /** How long a decided or expired approval is kept. */
  approvalRetentionMs: 7 * 86_400_000,
  /** How long `task.cancel` waits for a running task's worker to confirm before it answers. */
  cancelConfirmMs: 3_000,
  /** How long `task.retry` waits for the worker that ended a task's last run to let go of its job. */
  retryReleaseWaitMs: 5_000,
  /** How often audit trails are trimmed to their retention period. */
  auditTrimIntervalMs: 3_600_000,
  /** With an audit archive, how often each replica moves entries past the recent window from Redis to it. */
  auditArchiveIntervalMs: 5_000,
  /** After the drain window, how long requests still in progress get to be answered (else 1012 instead of 1001). */
  drainFinalAnswersMs: 1_000,
  /** Then how long clients get to answer the close frames before their connections are cut. */
  drainCloseHandshakeMs: 1_000,
  /** Beyond the drain window, how long a draining replica's agents are reported as moving (`AGENT_UNAVAILABLE`, retryable). */
  drainAgentMoveMs: 5_000,
  /** A tenant's `cluster.snapshot` is built at most this often, however many connections watch. */
  snapshotReuseMs: 500,
  /** How often each worker reports itself (`openclaw worker status`, Mission Control). */
  workerHeartbeatMs: 2_000,
  /** The longest interval between two checks for stalled jobs (a dead worker's jobs are taken over after its lock plus this). */
  workerStalledCheckMaxMs: 5_000,
  /** After a worker's drain deadline, how long its handed-back jobs get to reach the queue. */
  workerHandbackMs: 5_000,
  /** How soon a job whose ledger write failed (Redis trouble) runs again, without spending an attempt. */
  workerLedgerRetryMs: 1_000,
  /**
   * How long an agent's answer that could not be published, or reached no one, is sent again (within
   * its deadline); on Redis Cluster, also how long a process whose inbox stopped receiving (its master
   * failing over) keeps waiting for the answers of calls held elsewhere.
   */
  replyRetryMs: 20_000,
  /** How long a waiting workflow sleeps at most before it looks at its steps again, even if nothing woke it. */
  workflowGuardMs: 30_000,
} as const;
