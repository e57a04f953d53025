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
 * Cluster-wide token buckets (hash {t: tokens, ts: last refill}), checked first by the pick script:
 * both buckets must have a token, or neither is charged.
 */
const TOKEN_BUCKETS = `
local function bucket(key, rate, burst)
  if rate <= 0 then return nil end
  local b = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(b[1]) or burst
  local ts = tonumber(b[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
  return {key = key, rate = rate, burst = burst, tokens = tokens}
end
local limits = {
  {bucket(KEYS[3], tonumber(ARGV[11]) or 0, tonumber(ARGV[12]) or 0), 'principal'},
  {bucket(KEYS[4], tonumber(ARGV[13]) or 0, tonumber(ARGV[14]) or 0), 'tenant'},
}
for _, l in ipairs(limits) do
  local b = l[1]
  if b and b.tokens < 1 then
    return {'rate-limited', tostring(math.ceil((1 - b.tokens) * 1000 / b.rate)), l[2]}
  end
end
for _, l in ipairs(limits) do
  local b = l[1]
  if b then
    redis.call('HSET', b.key, 't', tostring(b.tokens - 1), 'ts', tostring(now))
    redis.call('PEXPIRE', b.key, math.ceil(b.burst / b.rate * 1000) + 1000)
  end
end
`;

/**
 * Picks the live instance of an agent with the least in-flight work below its concurrency, and
 * reserves a slot on it until the reservation expires (the task's deadline plus a margin), so a
 * reservation whose release was lost frees itself. Ties are broken by a random starting point.
 * KEYS: agent instances set, HTTP agent hash, the caller's principal and tenant rate buckets, the
 * agent's moving marker.
 * ARGV: prefix, task, taskId, reservationMs, random, and, to dispatch in the same round trip: own
 * replica id, inbox channel head and tail, and the dispatch message as head and tail around the
 * instance id. The message is published to the chosen instance's replica (one PUBLISH to one inbox)
 * unless that replica is the caller's own. Then ARGV 11 to 14: principal rate and burst, tenant rate
 * and burst (rate 0: no limit). A call that either bucket refuses takes no token from the other,
 * reserves nothing and is answered {'rate-limited', retryAfterMs, scope}.
 * Returns {'instance', id, replica} | {'busy', n} | {'no-task', n} | {'http', url, timeoutMs} |
 * {'moving'} | {'unreachable', n} | {'none'}. {'unreachable'}: instances are registered but none of
 * their replicas reports in (they may be restarting, or dead and not swept yet). An HTTP agent of the same name is used only when the agent has no live
 * WebSocket instance. {'moving'} instead of {'no-task'} or {'none'}: the agent's instances are moving
 * from a draining replica to another (its marker is set), so it is expected back.
 */
export const PICK_INSTANCE = `
local prefix = ARGV[1]
local task = ARGV[2]
${NOW}
${TOKEN_BUCKETS}
local ids = redis.call('SMEMBERS', KEYS[1])
local n = #ids
local live, handles = 0, 0
local bestId, bestReplica, bestLoad
if n > 0 then
  local start = tonumber(ARGV[5]) % n
  for i = 0, n - 1 do
    local id = ids[((start + i) % n) + 1]
    local inst = redis.call('HMGET', prefix .. 'instance:' .. id, 'replica', 'concurrency', 'tasks')
    local replica = inst[1]
    if replica and redis.call('EXISTS', prefix .. 'replica:' .. replica .. ':alive') == 1 then
      live = live + 1
      local tasks = inst[3] or ''
      if tasks == '' or string.find(tasks, '\\n' .. task .. '\\n', 1, true) then
        handles = handles + 1
        local loadKey = prefix .. 'instance:' .. id .. ':load'
        redis.call('ZREMRANGEBYSCORE', loadKey, '-inf', now)
        local load = redis.call('ZCARD', loadKey)
        -- A new attempt of the same task takes over its earlier attempt's slot.
        if redis.call('ZSCORE', loadKey, ARGV[3]) then load = load - 1 end
        if load < tonumber(inst[2]) and (bestLoad == nil or load < bestLoad) then
          bestId, bestReplica, bestLoad = id, replica, load
        end
      end
    end
  end
end
if bestId then
  local loadKey = prefix .. 'instance:' .. bestId .. ':load'
  redis.call('ZADD', loadKey, now + tonumber(ARGV[4]), ARGV[3])
  redis.call('PEXPIRE', loadKey, tonumber(ARGV[4]) + 60000)
  local receivers = -1
  if ARGV[6] and ARGV[6] ~= '' and bestReplica ~= ARGV[6] then
    receivers = redis.call('PUBLISH', ARGV[7] .. bestReplica .. ARGV[8], ARGV[9] .. bestId .. ARGV[10])
  end
  return {'instance', bestId, bestReplica, tostring(receivers)}
end
if handles > 0 then return {'busy', tostring(handles)} end
local moving = redis.call('EXISTS', KEYS[5]) == 1
if live > 0 then
  if moving then return {'moving'} end
  return {'no-task', tostring(live)}
end
local http = redis.call('HMGET', KEYS[2], 'url', 'tasks', 'timeoutMs')
if http[1] then
  local tasks = http[2] or ''
  if tasks == '' or string.find(tasks, '\\n' .. task .. '\\n', 1, true) then
    return {'http', http[1], http[3] or ''}
  end
  return {'no-task', '0'}
end
if moving then return {'moving'} end
if n > 0 then return {'unreachable', tostring(n)} end
return {'none'}
`;

/**
 * Removes one instance. KEYS: instance hash, load set, agent instances set, replica instances set,
 * agents set. ARGV: prefix, instanceId, agent.
 */
export const UNREGISTER_INSTANCE = `
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('SREM', KEYS[4], ARGV[2])
if redis.call('SCARD', KEYS[3]) == 0 then redis.call('SREM', KEYS[5], ARGV[3]) end
return 1
`;

/**
 * Removes every instance of a replica whose heartbeat key has expired; does nothing if it is alive.
 * Idempotent, so several replicas may sweep the same dead one. KEYS: replicas set, agents set.
 * ARGV: prefix, replicaId. Returns the number of instances removed, or -1 if the replica is alive.
 */
export const SWEEP_REPLICA = `
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
return #ids
`;

/**
 * Lists agents with live instances, and HTTP agents, as JSON. KEYS: agents set, HTTP agents set.
 * ARGV: prefix, and a name prefix (a tenant's `<tenant>/`): only names starting with it are listed,
 * without it. Empty: every name.
 */
export const LIST_AGENTS = `
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
    local inst = redis.call('HMGET', prefix .. 'instance:' .. id, 'replica', 'concurrency', 'tasks')
    if inst[1] and redis.call('EXISTS', prefix .. 'replica:' .. inst[1] .. ':alive') == 1 then
      count = count + 1
      capacity = capacity + tonumber(inst[2])
      inflight = inflight + redis.call('ZCOUNT', prefix .. 'instance:' .. id .. ':load', '(' .. now, '+inf')
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
`;
