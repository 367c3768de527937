//! The Lua scripts that keep values, routing records and the index consistent in
//! one step each (see the parent module docs for the layout).

/// Stores a value and its routing record, or (ARGV[11] = 1) a routing record alone.
/// KEYS: value, routing record, `iall`, `rsize`, `rbytes`, then `nt` version keys, `nc`
/// column sets, the other index zsets. ARGV: ticket, ttl, value, read set, nt, nc,
/// routing lifetime, byte bound, member, prefix, ghost flag, then the `nc` columns.
pub(super) const PUT_SCRIPT: &str = r"
local start = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local nt = tonumber(ARGV[5])
local nc = tonumber(ARGV[6])
local keep = tonumber(ARGV[7])
local maxb = tonumber(ARGV[8])
local member = ARGV[9]
local prefix = ARGV[10]
local ghost = ARGV[11] == '1'
local F = 5
if ghost then
  -- a live value keeps the routing record it was stored with
  if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
else
  for i = F + 1, F + nt do
    local v = redis.call('GET', KEYS[i])
    if v and tonumber(v) > start then return 0 end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function forget(m)
  local sz = redis.call('HGET', KEYS[4], m)
  if sz then
    redis.call('HDEL', KEYS[4], m)
    redis.call('DECRBY', KEYS[5], sz)
  end
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)) do
  forget(m)
  redis.call('ZREM', KEYS[3], m)
end
local size = string.len(ARGV[4]) + string.len(member) + 64
forget(member)
redis.call('HSET', KEYS[4], member, size)
redis.call('INCRBY', KEYS[5], size)
if not ghost then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
end
redis.call('SET', KEYS[2], ARGV[4], 'PX', keep)
redis.call('ZADD', KEYS[3], now + keep, member)
for j = 1, nc do
  local k = KEYS[F + nt + j]
  redis.call('SADD', k, ARGV[11 + j])
  redis.call('PEXPIRE', k, keep)
end
for i = F + nt + nc + 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  redis.call('ZADD', KEYS[i], now + keep, member)
  redis.call('PEXPIRE', KEYS[i], keep)
end
local total = tonumber(redis.call('GET', KEYS[5]) or '0')
while total > maxb do
  local p = redis.call('ZPOPMIN', KEYS[3])
  if #p == 0 then break end
  forget(p[1])
  redis.call('DEL', prefix .. 'e:' .. p[1], prefix .. 'r:' .. p[1])
  total = tonumber(redis.call('GET', KEYS[5]) or '0')
end
return 1
";

/// Deletes values with their routing records. KEYS: `iall`, `rsize`, `rbytes`.
/// ARGV: prefix, then members.
pub(super) const DROP_SCRIPT: &str = r"
for i = 2, #ARGV do
  local m = ARGV[i]
  local sz = redis.call('HGET', KEYS[2], m)
  if sz then
    redis.call('HDEL', KEYS[2], m)
    redis.call('DECRBY', KEYS[3], sz)
  end
  redis.call('ZREM', KEYS[1], m)
  redis.call('DEL', ARGV[1] .. 'e:' .. m, ARGV[1] .. 'r:' .. m)
end
return 1
";

pub(super) const BUMP_SCRIPT: &str = r"
local g = redis.call('INCR', KEYS[1])
for i = 2, #KEYS do redis.call('SET', KEYS[i], g) end
return g
";
