-- Lease up to N waiting jobs (promoting due delayed jobs first), within the queue's
-- limits: at most max_active jobs active across all workers, at most rate_max starts
-- per rate_ms (a sliding log of start times in BASE..'rate').
-- KEYS: common.  ARGV: 1 base, 2 count, 3 lease_ms, 4 token prefix (unique per call), 5 worker id
-- Returns: {ms until the next delayed job is due or -1, paused 0/1, then 7 fields per job:
--           id, name, data, attempt, token, options, stalls}
--@include common
local due = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', NOW, 'LIMIT', 0, 1000)
if #due > 0 then
  for _, id in ipairs(due) do push_waiting(id, jkey(id)) end
  redis.call('ZREM', K_DELAYED, unpack(due))
end

local meta = redis.call('HMGET', K_META, 'paused', 'max_active', 'rate_max', 'rate_ms')
if meta[1] == '1' then return {-1, 1} end

local count = tonumber(ARGV[2])
if meta[2] then
  -- A finishing job wakes a blocked worker when a cap is set (see finished()).
  count = math.min(count, tonumber(meta[2]) - redis.call('ZCARD', K_ACTIVE))
  if count <= 0 then return {-1, 0} end
end
local rate_key = BASE .. 'rate'
if meta[3] then
  local window = tonumber(meta[4])
  redis.call('ZREMRANGEBYSCORE', rate_key, '-inf', NOW - window)
  local room = tonumber(meta[3]) - redis.call('ZCARD', rate_key)
  if room <= 0 then
    -- Come back when the oldest start leaves the window; the jobs simply wait.
    local oldest = redis.call('ZRANGE', rate_key, 0, 0, 'WITHSCORES')
    return {math.max(1, tonumber(oldest[2]) + window - NOW), 0}
  end
  count = math.min(count, room)
end

local popped = redis.call('ZPOPMIN', K_WAIT, count)
local out = {-1, 0}
local deadline = NOW + tonumber(ARGV[3])
local n = 0
for i = 1, #popped, 2 do
  local id = popped[i]
  local k = jkey(id)
  local f = redis.call('HMGET', k, 'name', 'data', 'opts', 'stalls')
  if f[1] then
    n = n + 1
    local tok = ARGV[4] .. n
    local att = redis.call('HINCRBY', k, 'att', 1)
    redis.call('HSET', k, 'state', 'active', 'tok', tok, 'stime', NOW, 'wkr', ARGV[5])
    redis.call('ZADD', K_ACTIVE, deadline, id)
    if meta[3] then redis.call('ZADD', rate_key, NOW, tok) end
    redis.call('PUBLISH', EVENTS, 'active ' .. id)
    out[#out + 1] = id
    out[#out + 1] = f[1]
    out[#out + 1] = f[2]
    out[#out + 1] = att
    out[#out + 1] = tok
    out[#out + 1] = f[3] or ''
    out[#out + 1] = tonumber(f[4] or '0')
  end
end
if n == 0 then
  local nxt = redis.call('ZRANGE', K_DELAYED, 0, 0, 'WITHSCORES')
  if #nxt > 0 then out[1] = math.max(0, tonumber(nxt[2]) - NOW) end
elseif redis.call('ZCARD', K_WAIT) > 0 then
  -- More work remains: pass the wake-up on to another blocked worker.
  wake()
end
return out
