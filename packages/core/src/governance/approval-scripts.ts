import { LuaScript } from '../redis/lua-script';

/**
 * Records a decision. KEYS: approval hash, pending index. ARGV: id, principal, decision, reason, now.
 * Returns {'ok', status, decisions JSON} or {'missing'} / {'ended', status} / {'expired'} / {'duplicate'}.
 */
const DECIDE = `
local h = redis.call('HMGET', KEYS[1], 'status', 'expiresAt', 'approvers', 'decisions')
if not h[1] then return {'missing'} end
local now = tonumber(ARGV[5])
if h[1] ~= 'pending' then return {'ended', h[1]} end
if now >= tonumber(h[2]) then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'updatedAt', ARGV[5])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {'expired'}
end
local decisions = cjson.decode(h[4])
for _, d in ipairs(decisions) do
  if d.principal == ARGV[2] then return {'duplicate', h[1]} end
end
local entry = {principal = ARGV[2], decision = ARGV[3], at = now}
if ARGV[4] ~= '' then entry.reason = ARGV[4] end
table.insert(decisions, entry)
local status = 'pending'
if ARGV[3] == 'reject' then
  status = 'rejected'
else
  local n = 0
  for _, d in ipairs(decisions) do if d.decision == 'approve' then n = n + 1 end end
  if n >= tonumber(h[3]) then status = 'approved' end
end
local encoded = cjson.encode(decisions)
redis.call('HSET', KEYS[1], 'status', status, 'decisions', encoded, 'updatedAt', ARGV[5])
if status ~= 'pending' then
  redis.call('HSET', KEYS[1], 'decidedAt', ARGV[5])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return {'ok', status, encoded}
`;

/**
 * Uses an approval for a message. KEYS: approval hash, pending index. ARGV: id, hash, now, task id of
 * an async task's later attempt ('' for none). Returns ok, again (the same async task's retry),
 * pending, missing, rejected, expired, consumed or mismatch.
 */
const CONSUME = `
local h = redis.call('HMGET', KEYS[1], 'status', 'expiresAt', 'hash', 'taskId', 'mode')
if not h[1] then return 'missing' end
if h[1] == 'pending' then
  if tonumber(ARGV[3]) >= tonumber(h[2]) then
    redis.call('HSET', KEYS[1], 'status', 'expired', 'updatedAt', ARGV[3])
    redis.call('ZREM', KEYS[2], ARGV[1])
    return 'expired'
  end
  if h[3] ~= ARGV[2] then return 'mismatch' end
  return 'pending'
end
if h[3] ~= ARGV[2] and (h[1] == 'approved' or h[1] == 'consumed') then return 'mismatch' end
if h[1] == 'consumed' and ARGV[4] ~= '' and h[5] == 'async' and h[4] == ARGV[4] then return 'again' end
if h[1] ~= 'approved' then return h[1] end
redis.call('HSET', KEYS[1], 'status', 'consumed', 'consumedAt', ARGV[3], 'updatedAt', ARGV[3])
return 'ok'
`;

/** Expires a pending approval past its time. KEYS: approval hash, pending index. ARGV: id, now. Returns 1 if it did. */
const EXPIRE = `
local h = redis.call('HMGET', KEYS[1], 'status', 'expiresAt')
if h[1] ~= 'pending' or tonumber(ARGV[2]) < tonumber(h[2]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'expired', 'updatedAt', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

/** The approvals' scripts. */
export const APPROVAL_SCRIPTS = {
  decide: new LuaScript('approval-decide', 2, DECIDE),
  consume: new LuaScript('approval-consume', 2, CONSUME),
  expire: new LuaScript('approval-expire', 2, EXPIRE),
};
