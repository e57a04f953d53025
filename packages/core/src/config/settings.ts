import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { redisTarget } from './redis-url';
import { isRegionName, parseRegionPeers, type RegionPeer } from './region-peers';

/** Reads a boolean the way operators write it. */
const booleanText = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A positive integer from text. */
const intText = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `expected an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, `expected an integer from ${min} to ${max}`)
        .max(max, `expected an integer from ${min} to ${max}`),
    );

/** A comma-separated list; empty items are dropped. */
const listText = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
);

/** One setting: where it is read from, how it is parsed, its default and what it means. */
export interface Setting<T> {
  /** Environment variable. */
  env: string;
  /** Command-line flag of `openclaw gateway start`, without dashes, if any. */
  flag?: string;
  /** Parses the text form. */
  schema: z.ZodType<T, string>;
  /** The default, as text (parsed by `schema`), or a function giving one. */
  default: string | (() => string);
  /** What it means, for `--help` and docs/configuration.md. */
  doc: string;
}

const setting = <T>(s: Setting<T>): Setting<T> => s;

/**
 * Every gateway setting. Flags override environment variables, which override defaults.
 * This table is the single source for parsing, `--help` and docs/configuration.md.
 */
export const GATEWAY_SETTINGS = {
  port: setting({
    env: 'OPENCLAW_PORT',
    flag: 'port',
    schema: intText(0, 65535),
    default: '18789',
    doc: 'Port for HTTP and WebSocket. 0 picks a free port (logged when ready).',
  }),
  host: setting({
    env: 'OPENCLAW_HOST',
    flag: 'host',
    schema: z.string().min(1),
    default: '127.0.0.1',
    doc: 'Address to listen on. With auth "none" only loopback is allowed unless OPENCLAW_ALLOW_INSECURE_BIND is true.',
  }),
  redisUrl: setting({
    env: 'REDIS_URL',
    flag: 'redis',
    schema: z.string().superRefine((v, ctx) => {
      try {
        redisTarget(v);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }),
    default: 'redis://127.0.0.1:6379',
    doc: 'Redis shared by every replica of the cluster: `redis://[[user]:password@]host:port[/db]`, `rediss://...` for TLS (a private CA: `NODE_EXTRA_CA_CERTS`), or a Sentinel-managed Redis, `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master name>` (`rediss+sentinel://` for TLS), which follows the master through failovers.',
  }),
  redisStartupTimeoutMs: setting({
    env: 'OPENCLAW_REDIS_STARTUP_TIMEOUT_MS',
    schema: intText(1000, 3_600_000),
    default: '10000',
    doc: 'How long the process waits for Redis when it starts before it gives up and exits with code 1 (a supervisor such as Kubernetes then starts it again). Longer where Redis may come up well after the gateway.',
  }),
  replicaId: setting({
    env: 'OPENCLAW_REPLICA_ID',
    flag: 'replica-id',
    schema: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected 1 to 64 characters from A-Z a-z 0-9 . _ -'),
    default: () => `gw-${randomBytes(4).toString('hex')}`,
    doc: 'Unique id of this replica in the cluster (random by default; the pod name on Kubernetes).',
  }),
  auth: setting({
    env: 'OPENCLAW_AUTH',
    flag: 'auth',
    schema: z.enum(['none', 'apikey', 'jwt'], { message: 'expected "none", "apikey" or "jwt"' }),
    default: 'apikey',
    doc: 'Authentication mode: "apikey" (the default: nothing connects without a key), "jwt" (JWT bearer tokens, and API keys), or "none" (explicitly off: loopback development only).',
  }),
  apiKeys: setting({
    env: 'OPENCLAW_API_KEYS',
    flag: 'api-keys',
    schema: listText.pipe(z.array(z.string().min(16, 'API keys must have at least 16 characters'))),
    default: '',
    doc: 'Comma-separated static API keys (development and tests), each at least 16 characters.',
  }),
  apiKeySecret: setting({
    env: 'OPENCLAW_API_KEY_SECRET',
    schema: z.string().refine((v) => v === '' || v.length >= 32, 'expected at least 32 characters'),
    default: '',
    doc: 'Server secret that stored API keys are hashed with (HMAC-SHA256); enables `openclaw apikey`. At least 32 characters; the same on every replica; never logged.',
  }),
  jwtSecret: setting({
    env: 'OPENCLAW_JWT_SECRET',
    schema: z.string().refine((v) => v === '' || v.length >= 32, 'expected at least 32 characters'),
    default: '',
    doc: 'Shared secret of HS256/384/512 tokens (auth "jwt"); empty: HMAC tokens are refused. Never logged.',
  }),
  jwtIssuer: setting({
    env: 'OPENCLAW_JWT_ISSUER',
    schema: z.string(),
    default: '',
    doc: 'Expected token issuer (iss). Without OPENCLAW_JWT_JWKS_URL, its OIDC discovery document (/.well-known/openid-configuration) gives the keys.',
  }),
  jwtJwksUrl: setting({
    env: 'OPENCLAW_JWT_JWKS_URL',
    schema: z.string(),
    default: '',
    doc: "URL of the issuer's JWKS (public keys of RS*, PS*, ES*, EdDSA tokens).",
  }),
  jwtAudience: setting({
    env: 'OPENCLAW_JWT_AUDIENCE',
    schema: z.string(),
    default: 'openclaw',
    doc: 'Expected token audience (aud).',
  }),
  jwtAlgorithms: setting({
    env: 'OPENCLAW_JWT_ALGORITHMS',
    schema: listText.pipe(
      z.array(
        z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'], {
          message: 'expected public-key algorithms: RS*, PS*, ES*, EdDSA',
        }),
      ),
    ),
    default: 'RS256,PS256,ES256,EdDSA',
    doc: 'Allowed public-key algorithms, comma-separated (HMAC ones are set by OPENCLAW_JWT_SECRET; "none" never).',
  }),
  jwtClockSkewSeconds: setting({
    env: 'OPENCLAW_JWT_CLOCK_SKEW_S',
    schema: intText(0, 600),
    default: '30',
    doc: 'Clock skew tolerated when checking exp and nbf, in seconds.',
  }),
  jwtRequireExp: setting({
    env: 'OPENCLAW_JWT_REQUIRE_EXP',
    schema: booleanText,
    default: 'true',
    doc: 'Refuse tokens (JWTs, and introspected access tokens) that have no exp claim, which would otherwise be accepted forever.',
  }),
  jwtMaxLifetimeSeconds: setting({
    env: 'OPENCLAW_JWT_MAX_LIFETIME_S',
    schema: intText(0, 31_622_400),
    default: '86400',
    doc: 'Longest token lifetime accepted, in seconds: exp minus iat (minus now when iat is absent or later). Default 24 h; 0: no limit.',
  }),
  jwtTenantClaim: setting({
    env: 'OPENCLAW_JWT_TENANT_CLAIM',
    schema: z.string().min(1),
    default: 'tenant',
    doc: "Claim that names the principal's tenant. A token whose claim is not a valid tenant name is refused; one without it gets OPENCLAW_JWT_DEFAULT_TENANT.",
  }),
  jwtDefaultTenant: setting({
    env: 'OPENCLAW_JWT_DEFAULT_TENANT',
    schema: z
      .string()
      .regex(/^$|^[a-z0-9][a-z0-9._-]{0,62}$/, 'expected a tenant name (^[a-z0-9][a-z0-9._-]{0,62}$) or empty'),
    default: 'default',
    doc: "Tenant of tokens without the tenant claim; empty: such tokens are refused. The default, `default`, is the operators' tenant: a multi-tenant issuer should always set the claim, and the gateway this empty.",
  }),
  jwtRolesClaim: setting({
    env: 'OPENCLAW_JWT_ROLES_CLAIM',
    schema: z.string().min(1),
    default: 'roles',
    doc: "Claim with the principal's roles (array, or space-separated string).",
  }),
  jwtScopeClaim: setting({
    env: 'OPENCLAW_JWT_SCOPE_CLAIM',
    schema: z.string().min(1),
    default: 'scope',
    doc: 'Claim with OAuth scopes; scopes shaped like permissions (agent:invoke:billing) grant them.',
  }),
  auditSecret: setting({
    env: 'OPENCLAW_AUDIT_SECRET',
    schema: z.string().refine((v) => v === '' || v.length >= 32, 'expected at least 32 characters'),
    default: '',
    doc: 'Key of the audit chain and of its sealed head and anchor (HMAC-SHA256), the same on every replica and worker. Empty: plain SHA-256, which shows accidental damage only: someone with write access to Redis can then change, remove or cut entries off either end and recompute everything. Never logged.',
  }),
  metricsToken: setting({
    env: 'OPENCLAW_METRICS_TOKEN',
    schema: z.string().refine((v) => v === '' || v.length >= 16, 'expected at least 16 characters'),
    default: '',
    doc: 'When set, `GET /metrics` needs `Authorization: Bearer <this token>` (Prometheus `authorization` / `bearer_token`). Empty: `/metrics` is open, like `/healthz`; keep the port off the public network. Never logged.',
  }),
  stateMaxValueBytes: setting({
    env: 'OPENCLAW_STATE_MAX_VALUE_BYTES',
    schema: intText(1, 16 * 1024 * 1024),
    default: String(256 * 1024),
    doc: 'Largest value of a shared-state key, in UTF-8 bytes of its JSON (`state.set`); larger ones are refused with PAYLOAD_TOO_LARGE. A value must also fit in a frame (OPENCLAW_MAX_FRAME_BYTES).',
  }),
  memoryMaxEntries: setting({
    env: 'OPENCLAW_MEMORY_MAX_ENTRIES',
    schema: intText(1, 1_000_000),
    default: '1000',
    doc: 'Entries a memory thread keeps: appending more drops the oldest (their sequence numbers are not reused).',
  }),
  memoryIdleMs: setting({
    env: 'OPENCLAW_MEMORY_IDLE_MS',
    schema: intText(1000, 10 * 365 * 24 * 3_600_000),
    default: String(7 * 24 * 3_600_000),
    doc: 'How long a memory thread is kept after its last append (7 days by default); then it is dropped whole.',
  }),
  region: setting({
    env: 'OPENCLAW_REGION',
    schema: z.string().refine((v) => v === '' || isRegionName(v), 'expected 1 to 32 lowercase letters, digits or "-"'),
    default: '',
    doc: 'Name of the region this cluster is (e.g. `eu-west`), when it is linked with clusters in other regions (OPENCLAW_REGION_PEERS). The same on every replica of the cluster.',
  }),
  regionPeers: setting({
    env: 'OPENCLAW_REGION_PEERS',
    schema: z.string().transform((v, ctx): RegionPeer[] => {
      try {
        return parseRegionPeers(v);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    }),
    default: '',
    doc: "The regions this cluster is linked with, as `name=url` pairs separated by commas (`us-east=https://gw.us-east.example.com`): a call for an agent with no instance here goes to the first of them that has one. The URL is where that region's gateways are reached (their load balancer), with no path. Needs OPENCLAW_REGION and OPENCLAW_REGION_SECRET.",
  }),
  regionSecret: setting({
    env: 'OPENCLAW_REGION_SECRET',
    schema: z.string().refine((v) => v === '' || v.length >= 32, 'expected at least 32 characters'),
    default: '',
    doc: "Secret shared by all linked regions: the link between their gateways is authenticated with it (a bearer token, over HTTPS between regions). At least 32 characters; never logged. Anyone holding it can call any tenant's agents through the link.",
  }),
  jaegerUrl: setting({
    env: 'OPENCLAW_JAEGER_URL',
    schema: z
      .string()
      .refine((v) => v === '' || /^https?:\/\/[^\s]+$/.test(v), 'expected an http:// or https:// URL')
      .transform((v) => v.replace(/\/+$/, '')),
    default: '',
    doc: "Base URL of the Jaeger UI as operators' browsers reach it (e.g. `http://localhost:16686`). Mission Control then links each task's trace id to `<url>/trace/<id>`. Empty: trace ids are shown without links.",
  }),
  auditRetentionDays: setting({
    env: 'OPENCLAW_AUDIT_RETENTION_DAYS',
    schema: intText(0, 36_500),
    default: '365',
    doc: 'Days audit entries are kept; older ones are trimmed hourly (with an archive: whole archived days), and the rest stays verifiable (the first kept entry becomes the sealed anchor). A trail that does not verify up to the cut is not trimmed. 0: forever.',
  }),
  auditArchiveDir: setting({
    env: 'OPENCLAW_AUDIT_ARCHIVE_DIR',
    schema: z.string(),
    default: '',
    doc: 'Folder of the audit archive: entries older than `OPENCLAW_AUDIT_ARCHIVE_AFTER_MS` move from Redis to append-only files here (a segment per tenant and day), so Redis holds only a recent window; `openclaw audit verify`, `export` and `tail` read across both. Every replica must mount the same volume (ReadWriteMany on Kubernetes). Retention then removes whole archived days. Empty: entries stay in Redis until retention trims them.',
  }),
  auditArchiveAfterMs: setting({
    env: 'OPENCLAW_AUDIT_ARCHIVE_AFTER_MS',
    schema: intText(1000, 86_400_000),
    default: '60000',
    doc: 'With an archive folder: how old an audit entry gets before it moves from Redis to the archive (checked every 5 s). Redis holds about this much of the trail.',
  }),
  auditPayloads: setting({
    env: 'OPENCLAW_AUDIT_PAYLOADS',
    schema: booleanText,
    default: 'false',
    doc: "Also record each call's data in its audit entry (JSON, at most 4 KiB). Off: metadata only.",
  }),
  auditRequired: setting({
    env: 'OPENCLAW_AUDIT_REQUIRED',
    schema: booleanText,
    default: 'false',
    doc: 'Refuse requests (UNAVAILABLE) rather than serve them unaudited while audit entries cannot be written.',
  }),
  jwtGroupsClaim: setting({
    env: 'OPENCLAW_JWT_GROUPS_CLAIM',
    schema: z.string().min(1),
    default: 'groups',
    doc: "Claim with the principal's groups (for policy bindings).",
  }),
  delegationSecret: setting({
    env: 'OPENCLAW_DELEGATION_SECRET',
    schema: z.string().refine((v) => v === '' || v.length >= 32, 'expected at least 32 characters'),
    default: '',
    doc: 'Key that delegation tokens are signed with (HS256), the same on every replica; empty: delegation is off. Never logged.',
  }),
  oauthClientId: setting({
    env: 'OPENCLAW_OAUTH_CLIENT_ID',
    schema: z.string(),
    default: '',
    doc: 'Client id of the gateway at the token issuer, for RFC 7662 introspection of opaque access tokens (auth "jwt"); empty: opaque tokens are refused.',
  }),
  oauthClientSecret: setting({
    env: 'OPENCLAW_OAUTH_CLIENT_SECRET',
    schema: z.string(),
    default: '',
    doc: 'Client secret for introspection (HTTP Basic). Never logged.',
  }),
  oauthIntrospectionUrl: setting({
    env: 'OPENCLAW_OAUTH_INTROSPECTION_URL',
    schema: z.string(),
    default: '',
    doc: "Introspection endpoint; empty: the issuer's discovery document's introspection_endpoint.",
  }),
  allowInsecureBind: setting({
    env: 'OPENCLAW_ALLOW_INSECURE_BIND',
    schema: booleanText,
    default: 'false',
    doc: 'Allow auth "none" on a non-loopback address. Never in production.',
  }),
  allowedOrigins: setting({
    env: 'OPENCLAW_ALLOWED_ORIGINS',
    schema: listText,
    default: '',
    doc: 'Browser origins allowed to connect (comma-separated, "*" for any). Requests without an Origin header are not browsers and pass. With auth "none", loopback origins always pass.',
  }),
  keyPrefix: setting({
    env: 'OPENCLAW_KEY_PREFIX',
    schema: z.string().regex(/^[A-Za-z0-9._-]{1,32}$/, 'expected 1 to 32 characters from A-Z a-z 0-9 . _ -'),
    default: 'openclaw',
    doc: 'Prefix of every Redis key and channel; clusters sharing one Redis need different prefixes.',
  }),
  maxFrameBytes: setting({
    env: 'OPENCLAW_MAX_FRAME_BYTES',
    schema: intText(1024, 64 * 1024 * 1024),
    default: String(1024 * 1024),
    doc: 'Largest inbound frame; a larger one closes the socket with 1009.',
  }),
  maxJsonDepth: setting({
    env: 'OPENCLAW_MAX_JSON_DEPTH',
    schema: intText(4, 1000),
    default: '64',
    doc: "Deepest nesting of objects and arrays in a frame, an HTTP API body or an HTTP agent's answer; deeper is refused with `BAD_REQUEST` naming the field (an agent's too-deep answer fails its call at once).",
  }),
  heartbeatMs: setting({
    env: 'OPENCLAW_HEARTBEAT_MS',
    schema: intText(100, 600_000),
    default: '15000',
    doc: 'Interval of server pings; a peer that misses two is terminated.',
  }),
  maxBufferedBytes: setting({
    env: 'OPENCLAW_MAX_BUFFERED_BYTES',
    schema: intText(1024, 1024 * 1024 * 1024),
    default: String(8 * 1024 * 1024),
    doc: 'Outbound bytes queued for one connection before it is closed with 1013 (slow consumer).',
  }),
  rateLimitPerSecond: setting({
    env: 'OPENCLAW_RATE_LIMIT',
    schema: intText(1, 1_000_000),
    default: '1000',
    doc: 'Requests per second one connection may send (token bucket refill rate).',
  }),
  rateLimitBurst: setting({
    env: 'OPENCLAW_RATE_BURST',
    schema: intText(1, 1_000_000),
    default: '2000',
    doc: 'Requests one connection may send in a burst (token bucket size).',
  }),
  principalRate: setting({
    env: 'OPENCLAW_PRINCIPAL_RATE',
    schema: intText(0, 10_000_000),
    default: '1000',
    doc: 'Coordinator calls per second one principal may make across the whole cluster (token bucket in Redis); 0: no limit.',
  }),
  principalMaxConnections: setting({
    env: 'OPENCLAW_PRINCIPAL_MAX_CONNECTIONS',
    schema: intText(0, 10_000_000),
    default: '1000',
    doc: 'Live connections one principal may hold across the cluster; 0: no limit. Per role: third number of OPENCLAW_ROLE_RATES.',
  }),
  principalBurst: setting({
    env: 'OPENCLAW_PRINCIPAL_BURST',
    schema: intText(0, 10_000_000),
    default: '2000',
    doc: "Size of a principal's cluster-wide bucket: calls it may make at once.",
  }),
  tenantRate: setting({
    env: 'OPENCLAW_TENANT_RATE',
    schema: intText(0, 10_000_000),
    default: '0',
    doc: 'Coordinator calls per second one tenant (all its principals) may make across the cluster; 0: no limit.',
  }),
  tenantBurst: setting({
    env: 'OPENCLAW_TENANT_BURST',
    schema: intText(0, 10_000_000),
    default: '0',
    doc: "Size of a tenant's cluster-wide bucket (at least 1 when OPENCLAW_TENANT_RATE is set).",
  }),
  roleRates: setting({
    env: 'OPENCLAW_ROLE_RATES',
    schema: listText
      .pipe(
        z.array(
          z
            .string()
            .regex(
              /^[a-z0-9][a-z0-9._-]{0,62}=\d+\/\d+(\/\d+)?$/,
              'expected role=rate/burst[/connections] items, e.g. caller=100/200/50',
            ),
        ),
      )
      // Looked up by the roles of credentials: no prototype, so a role `constructor` has no limits.
      .transform((items) =>
        Object.assign(
          Object.create(null) as Record<string, { rate: number; burst: number; connections: number | undefined }>,
          Object.fromEntries(
            items.map((item) => {
              const [role, limits] = item.split('=') as [string, string];
              const [rate, burst, connections] = limits.split('/').map(Number) as [number, number, number | undefined];
              return [role, { rate, burst, connections }];
            }),
          ),
        ),
      ),
    default: '',
    doc: 'Per-role principal limits replacing the defaults, e.g. `caller=100/200/50,agent=50/100` (calls per second / burst / optional live connections); a principal with several roles gets the highest.',
  }),
  authMaxFailures: setting({
    env: 'OPENCLAW_AUTH_MAX_FAILURES',
    schema: intText(0, 1_000_000),
    default: '10',
    doc: 'Failed authentications from one address within OPENCLAW_AUTH_FAILURE_WINDOW_MS before it is locked out; 0: never.',
  }),
  authFailureWindowMs: setting({
    env: 'OPENCLAW_AUTH_FAILURE_WINDOW_MS',
    schema: intText(1000, 86_400_000),
    default: '60000',
    doc: 'Window in which failed authentications from one address are counted.',
  }),
  authLockoutMs: setting({
    env: 'OPENCLAW_AUTH_LOCKOUT_MS',
    schema: intText(1000, 86_400_000),
    default: '300000',
    doc: 'How long a locked-out address is refused (HTTP 429), whatever credentials it sends.',
  }),
  trustedProxies: setting({
    env: 'OPENCLAW_TRUSTED_PROXIES',
    schema: listText,
    default: '',
    doc: 'Addresses of load balancers whose X-Forwarded-For names the client address (for lockout). Others are ignored.',
  }),
  maxInFlightPerConnection: setting({
    env: 'OPENCLAW_MAX_IN_FLIGHT',
    schema: intText(1, 1_000_000),
    default: '1024',
    doc: 'Unanswered coordinator calls one connection may have at once.',
  }),
  presenceTtlMs: setting({
    env: 'OPENCLAW_PRESENCE_TTL_MS',
    schema: intText(1000, 600_000),
    default: '5000',
    doc: "TTL of a replica's heartbeat key. A dead replica's agents leave agents.list within this time (plus one sweep).",
  }),
  callRecordTtlMs: setting({
    env: 'OPENCLAW_CALL_RECORD_TTL_MS',
    schema: intText(1000, 86_400_000),
    default: '300000',
    doc: 'How long the record of a sync call is kept after its last change (task.get and task.cancel from any replica). A call with an idempotencyKey is kept as long as its key (an hour).',
  }),
  defaultTimeoutMs: setting({
    env: 'OPENCLAW_DEFAULT_TIMEOUT_MS',
    schema: intText(1, 3_600_000),
    default: '30000',
    doc: 'Deadline of a coordinator call that gives no timeoutMs.',
  }),
  httpAgentsAllowPrivate: setting({
    env: 'OPENCLAW_HTTP_AGENTS_ALLOW_PRIVATE',
    schema: z.enum(['auto', 'true', 'false', '1', '0']).transform((v) => v),
    default: 'auto',
    doc: 'Whether HTTP agents may have loopback, private or link-local URLs. "auto": yes only with auth "none".',
  }),
  drainMs: setting({
    env: 'OPENCLAW_DRAIN_MS',
    schema: intText(0, 600_000),
    default: '10000',
    doc: "On SIGTERM, how long to wait for in-flight calls and this replica's agents' tasks before closing sockets with 1001.",
  }),
  maxConnections: setting({
    env: 'OPENCLAW_MAX_CONNECTIONS',
    schema: intText(1, 10_000_000),
    default: '10000',
    doc: "Most WebSocket connections this replica holds. Beyond it, upgrades get 503 `UNAVAILABLE` with `Retry-After` (1 to 3 s), which a load balancer such as the nginx of `deploy/` passes to another replica. Size it to the pod's memory.",
  }),
  refusedLingerMs: setting({
    env: 'OPENCLAW_REFUSED_LINGER_MS',
    schema: intText(0, 60_000),
    default: '2000',
    doc: 'How long the socket of a refused WebSocket upgrade (401, 403, 429, 503) may stay open after the refusal was sent, for a client that reads it and never closes its side; then it is cut.',
  }),
  drainCloseRate: setting({
    env: 'OPENCLAW_DRAIN_CLOSE_RATE',
    schema: intText(1, 1_000_000),
    default: '500',
    doc: 'On SIGTERM, the most idle connections closed (1001) per second, so clients do not all reconnect at once; faster when needed to close them all within half of `OPENCLAW_DRAIN_MS`.',
  }),
  validators: setting({
    env: 'OPENCLAW_VALIDATORS',
    schema: listText,
    default: '',
    doc: 'Custom governance validators: comma-separated paths of JavaScript modules (TypeScript compiled), each exporting { name, tier, check }. Loaded at start; a module that cannot be loaded stops the process. Give workers the same list.',
  }),
  taskAttempts: setting({
    env: 'OPENCLAW_TASK_ATTEMPTS',
    schema: intText(1, 20),
    default: '3',
    doc: 'Async tasks: attempts in all (first try and retries of retryable failures) when neither the call nor the agent says.',
  }),
  taskBackoffMs: setting({
    env: 'OPENCLAW_TASK_BACKOFF_MS',
    schema: intText(0, 3_600_000),
    default: '1000',
    doc: 'Async tasks: delay before the first retry; doubled on each retry, with up to 50% jitter.',
  }),
  taskRetentionMs: setting({
    env: 'OPENCLAW_TASK_RETENTION_MS',
    schema: intText(60_000, 90 * 86_400_000),
    default: '604800000',
    doc: 'Async tasks: how long records, events and failed jobs (dead letters) are kept after their last change. Default 7 days.',
  }),
  idempotencyWindowMs: setting({
    env: 'OPENCLAW_IDEMPOTENCY_WINDOW_MS',
    schema: intText(1000, 30 * 86_400_000),
    default: '86400000',
    doc: 'Async tasks and workflows: how long a repeated idempotencyKey (per tenant) returns the original task. Default 24 h.',
  }),
  escalationTimeoutMs: setting({
    env: 'OPENCLAW_ESCALATION_TIMEOUT_MS',
    schema: intText(1, 30 * 86_400_000),
    default: '86400000',
    doc: 'How long a task escalated to a human waits for an answer when its call or step gives no escalation policy. Default 24 h.',
  }),
  workflowDeadlineMs: setting({
    env: 'OPENCLAW_WORKFLOW_DEADLINE_MS',
    schema: intText(1, 30 * 86_400_000),
    default: '86400000',
    doc: 'Deadline of a workflow whose definition gives no deadlineMs. Default 24 h.',
  }),
  logLevel: setting({
    env: 'OPENCLAW_LOG_LEVEL',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    default: 'info',
    doc: 'Log level of the logs on stdout.',
  }),
  logFormat: setting({
    env: 'OPENCLAW_LOG_FORMAT',
    flag: 'log-format',
    schema: z.enum(['auto', 'pretty', 'json'], { message: 'expected "auto", "pretty" or "json"' }),
    default: 'auto',
    doc: 'Format of the logs on stdout: "auto" (the default: readable lines when stdout is a terminal, JSON lines otherwise), "pretty" or "json".',
  }),
} as const;

/**
 * Settings of `openclaw worker start`. Redis, key prefix, log level and log format are read as the
 * gateway reads them (same variables); these are the worker's own.
 */
export const WORKER_SETTINGS = {
  redisUrl: GATEWAY_SETTINGS.redisUrl,
  redisStartupTimeoutMs: GATEWAY_SETTINGS.redisStartupTimeoutMs,
  keyPrefix: GATEWAY_SETTINGS.keyPrefix,
  logLevel: GATEWAY_SETTINGS.logLevel,
  logFormat: GATEWAY_SETTINGS.logFormat,
  /** The worker writes governance verdicts of the attempts it runs to the audit trail. */
  auditSecret: GATEWAY_SETTINGS.auditSecret,
  validators: GATEWAY_SETTINGS.validators,
  metricsToken: GATEWAY_SETTINGS.metricsToken,
  /** HTTP agents' answers are checked by the worker too, and held to the same size. */
  maxJsonDepth: GATEWAY_SETTINGS.maxJsonDepth,
  maxFrameBytes: GATEWAY_SETTINGS.maxFrameBytes,
  /** A task for an agent that only a linked region has is sent there, as a replica's call is. */
  region: GATEWAY_SETTINGS.region,
  regionPeers: GATEWAY_SETTINGS.regionPeers,
  regionSecret: GATEWAY_SETTINGS.regionSecret,
  workerPort: setting({
    env: 'OPENCLAW_WORKER_PORT',
    flag: 'port',
    schema: intText(0, 65535),
    default: '18790',
    doc: "Port of the worker's HTTP endpoints: `/metrics` (Prometheus), `/healthz`, `/readyz`. 0 picks a free port (logged when ready).",
  }),
  workerHost: setting({
    env: 'OPENCLAW_WORKER_HOST',
    schema: z.string().min(1),
    default: '127.0.0.1',
    doc: "Address the worker's HTTP endpoints listen on. In a container, `0.0.0.0` so Prometheus and probes can reach it.",
  }),
  workerId: setting({
    env: 'OPENCLAW_WORKER_ID',
    flag: 'worker-id',
    schema: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected 1 to 64 letters, digits, ".", "_" or "-"'),
    default: () => `worker-${randomBytes(4).toString('hex')}`,
    doc: 'Id of this worker process (its bus inbox and its name in BullMQ). Random when not given.',
  }),
  concurrency: setting({
    env: 'OPENCLAW_WORKER_CONCURRENCY',
    flag: 'concurrency',
    schema: intText(1, 10_000),
    default: '32',
    doc: 'Jobs (tasks, workflow turns) one worker runs at once. Most time is spent waiting for agents, so it can be high.',
  }),
  lockMs: setting({
    env: 'OPENCLAW_WORKER_LOCK_MS',
    schema: intText(1000, 600_000),
    default: '30000',
    doc: "How long a worker's hold on a job lasts unless renewed. A worker that dies loses its jobs to another worker after this long plus at most 5 s (the stalled check runs every 5 s, or as often as this if shorter).",
  }),
  maxStalls: setting({
    env: 'OPENCLAW_WORKER_MAX_STALLS',
    schema: intText(1, 100),
    default: '3',
    doc: 'Times a job may be taken back from dead workers before it fails.',
  }),
  workerDrainMs: setting({
    env: 'OPENCLAW_WORKER_DRAIN_MS',
    schema: intText(0, 600_000),
    default: '10000',
    doc: 'On SIGTERM, how long running tasks get to finish; the ones still running are then handed back to the queue for another worker.',
  }),
  workerHttpAgentsAllowPrivate: setting({
    env: 'OPENCLAW_WORKER_HTTP_AGENTS_ALLOW_PRIVATE',
    schema: booleanText,
    default: 'false',
    doc: 'Whether the worker may call HTTP agents on loopback, private or link-local addresses (`openclaw up` sets it for local development).',
  }),
} as const;
