import { LuaScript } from '../redis/lua-script';

/**
 * Lua scripts of the agent registry. Each runs atomically in Redis; registry keys share one hash
 * tag, so each script touches one slot. ARGV[1] is always the registry prefix (`RedisKeys.registry`).
 * @internal
 */

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * Leases tokens from a cluster-wide token bucket (hash {t: tokens, ts: last refill}): up to ARGV[3]
 * of them, as many as the bucket holds. KEYS: the bucket. ARGV: rate (tokens/s), burst, wanted.
 * Returns {granted, retryAfterMs}: granted 0 with the time until a token is back.
 */
export const LEASE_TOKENS = new LuaScript(
  'lease-tokens',
  1,
  `
${NOW}
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local granted = math.min(want, math.floor(tokens))
if granted < 1 then return {0, tostring(math.ceil((1 - tokens) * 1000 / rate))} end
redis.call('HSET', KEYS[1], 't', tostring(tokens - granted), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {granted, '0'}
`,
);

/**
 * The whole routing directory, for the copy each replica routes from: the registry version, the
 * replicas whose heartbeat is current, every agent instance, the agents moving from a draining
 * replica (until when), and the HTTP agents, as JSON. KEYS: agents set, HTTP agents set, replicas
 * set, version, moving agents. ARGV: prefix.
 */
export const DIRECTORY = new LuaScript(
  'directory',
  5,
  `
local prefix = ARGV[1]
${NOW}
local out = {version = redis.call('GET', KEYS[4]) or '0', alive = {}, instances = {}, moving = {}, http = {}}
for _, r in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('EXISTS', prefix .. 'replica:' .. r .. ':alive') == 1 then table.insert(out.alive, r) end
end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  for _, id in ipairs(redis.call('SMEMBERS', prefix .. 'agent:' .. name .. ':instances')) do
    local inst = redis.call('HMGET', prefix .. 'instance:' .. id, 'replica', 'concurrency', 'tasks')
    if inst[1] then table.insert(out.instances, {id, name, inst[1], tonumber(inst[2]) or 1, inst[3] or ''}) end
  end
end
local moving = redis.call('ZRANGEBYSCORE', KEYS[5], now, '+inf', 'WITHSCORES')
for i = 1, #moving, 2 do table.insert(out.moving, {moving[i], tonumber(moving[i + 1])}) end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local h = redis.call('HMGET', prefix .. 'http-agent:' .. name, 'url', 'tasks', 'timeoutMs')
  if h[1] then table.insert(out.http, {name, h[1], h[2] or '', h[3] or ''}) end
end
return cjson.encode(out)
`,
);

/**
 * The registry version and which replicas' heartbeats are current: what a replica checks between
 * directory loads. KEYS: replicas set, version. ARGV: prefix. Returns {version, alive replica ids...}.
 */
export const LIVENESS = new LuaScript(
  'liveness',
  2,
  `
local prefix = ARGV[1]
local out = {redis.call('GET', KEYS[2]) or '0'}
for _, r in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', prefix .. 'replica:' .. r .. ':alive') == 1 then table.insert(out, r) end
end
return out
`,
);

/**
 * Removes one instance. KEYS: instance hash, load set, agent instances set, replica instances set,
 * agents set. ARGV: prefix, instanceId, agent.
 */
export const UNREGISTER_INSTANCE = new LuaScript(
  'unregister-instance',
  5,
  `
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('SREM', KEYS[4], ARGV[2])
if redis.call('SCARD', KEYS[3]) == 0 then redis.call('SREM', KEYS[5], ARGV[3]) end
redis.call('INCR', ARGV[1] .. 'version')
return 1
`,
);

/**
 * Removes every instance of a replica whose heartbeat key has expired; does nothing if it is alive.
 * Idempotent, so several replicas may sweep the same dead one. KEYS: replicas set, agents set.
 * ARGV: prefix, replicaId. Returns the number of instances removed, or -1 if the replica is alive.
 */
export const SWEEP_REPLICA = new LuaScript(
  'sweep-replica',
  2,
  `
local prefix = ARGV[1]
local r = ARGV[2]
if redis.call('EXISTS', prefix .. 'replica:' .. r .. ':alive') == 1 then return -1 end
local setKey = prefix .. 'replica:' .. r .. ':instances'
local ids = redis.call('SMEMBERS', setKey)
for _, id in ipairs(ids) do
  local name = redis.call('HGET', prefix .. 'instance:' .. id, 'agent')
  redis.call('DEL', prefix .. 'instance:' .. id, prefix .. 'instance:' .. id .. ':load')
  if name then
    local agentKey = prefix .. 'agent:' .. name .. ':instances'
    redis.call('SREM', agentKey, id)
    if redis.call('SCARD', agentKey) == 0 then redis.call('SREM', KEYS[2], name) end
  end
end
redis.call('DEL', setKey)
redis.call('SREM', KEYS[1], r)
redis.call('INCR', prefix .. 'version')
return #ids
`,
);

/**
 * Lists agents with live instances, and HTTP agents, as JSON. KEYS: agents set, HTTP agents set.
 * ARGV: prefix, and a name prefix (a tenant's `<tenant>/`): only names starting with it are listed,
 * without it. Empty: every name.
 */
export const LIST_AGENTS = new LuaScript(
  'list-agents',
  2,
  `
local prefix = ARGV[1]
local only = ARGV[2] or ''
${NOW}
local out = {}
local function shown(name)
  if only == '' then return name end
  if string.sub(name, 1, #only) == only then return string.sub(name, #only + 1) end
  return nil
end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local label = shown(name)
  if label then
  local count, capacity, inflight, any = 0, 0, 0, false
  local tasks, seen = {}, {}
  for _, id in ipairs(redis.call('SMEMBERS', prefix .. 'agent:' .. name .. ':instances')) do
    local inst = redis.call('HMGET', prefix .. 'instance:' .. id, 'replica', 'concurrency', 'tasks', 'inFlight')
    if inst[1] and redis.call('EXISTS', prefix .. 'replica:' .. inst[1] .. ':alive') == 1 then
      count = count + 1
      capacity = capacity + tonumber(inst[2])
      inflight = inflight + (tonumber(inst[4]) or 0)
      local t = inst[3] or ''
      if t == '' then any = true end
      for task in string.gmatch(t, '[^\\n]+') do
        if not seen[task] then seen[task] = true; table.insert(tasks, task) end
      end
    end
  end
  if count > 0 then
    if any then tasks = {'*'} end
    table.insert(out, {name = label, kind = 'ws', instances = count, capacity = capacity, inFlight = inflight, tasks = tasks})
  end
  end
end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local label = shown(name)
  local h = redis.call('HMGET', prefix .. 'http-agent:' .. name, 'url', 'tasks')
  if label and h[1] then
    local tasks = {}
    for task in string.gmatch(h[2] or '', '[^\\n]+') do table.insert(tasks, task) end
    if #tasks == 0 then tasks = {'*'} end
    table.insert(out, {name = label, kind = 'http', instances = 0, tasks = tasks, url = h[1]})
  end
end
return cjson.encode(out)
`,
);
