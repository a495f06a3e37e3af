-- Shared by every queue script (inlined by scripts.py where a script says
-- "--@include common").
-- KEYS (same order in every queue script):
--   1 wait  2 active  3 delayed  4 completed  5 failed  6 cancelled  7 meta  8 marker
-- ARGV[1]: the queue's key base, "{prefix}:{queue}:" (job keys and channels hang off it)
-- Invariant kept by every script: a job hash has a "tok" field exactly while it is active.
local K_WAIT, K_ACTIVE, K_DELAYED = KEYS[1], KEYS[2], KEYS[3]
local K_COMPLETED, K_FAILED, K_CANCELLED = KEYS[4], KEYS[5], KEYS[6]
local K_META, K_MARKER = KEYS[7], KEYS[8]
local BASE = ARGV[1]
local EVENTS = BASE .. 'events'
local CONTROL = BASE .. 'control'
local T = redis.call('TIME')
local NOW = tonumber(T[1]) * 1000 + math.floor(tonumber(T[2]) / 1000)
-- Finished sets are scored in microseconds so "keep the last N" is exact across calls.
local NOW_US = tonumber(T[1]) * 1000000 + tonumber(T[2])

local function jkey(id)
  return BASE .. 'j:' .. id
end

-- Tell one blocked worker there may be work (the marker holds at most one member).
local function wake()
  redis.call('ZADD', K_MARKER, 0, '0')
end

local function delete_job(id)
  local k = jkey(id)
  redis.call('DEL', k, k .. ':err', k .. ':log')
end

local function push_waiting(id, k)
  redis.call('ZADD', K_WAIT, redis.call('HGET', k, 'ws'), id)
  redis.call('HSET', k, 'state', 'waiting')
end

-- Keep at most `count` newest members of a finished set, none older than `max_age`
-- (ms; the sets are scored in us); -1 means no limit. Bounded per call so one script never blocks Redis long.
local function retain(set_key, count, max_age)
  if max_age >= 0 then
    local old = redis.call('ZRANGEBYSCORE', set_key, '-inf', NOW_US - max_age * 1000,
      'LIMIT', 0, 1000)
    if #old > 0 then
      for _, id in ipairs(old) do delete_job(id) end
      redis.call('ZREM', set_key, unpack(old))
    end
  end
  if count >= 0 then
    local excess = redis.call('ZCARD', set_key) - count
    if excess > 0 then
      if excess > 1000 then excess = 1000 end
      local ids = redis.call('ZRANGE', set_key, 0, excess - 1)
      for _, id in ipairs(ids) do delete_job(id) end
      redis.call('ZREMRANGEBYRANK', set_key, 0, excess - 1)
    end
  end
end

-- An active job finished: with a concurrency cap, a worker blocked on the cap may
-- now claim, so wake one.
local function finished()
  if redis.call('HEXISTS', K_META, 'max_active') == 1 then wake() end
end

-- Processing-time histogram in the meta hash (bounds in ms, as DURATION_BUCKETS in
-- backends/base.py): m:b<i> counts runs in bucket i, m:sum their seconds.
local BUCKETS = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
  300000, 900000, 3600000}

local function bucket_of(ms)
  for i, bound in ipairs(BUCKETS) do
    if ms <= bound then return i end
  end
  return #BUCKETS + 1
end

-- End a job cancelled; the caller has already taken it out of its previous set.
local function to_cancelled(id, k)
  redis.call('HDEL', k, 'tok', 'cxl')
  redis.call('HSET', k, 'state', 'cancelled', 'ftime', NOW)
  redis.call('ZADD', K_CANCELLED, NOW_US, id)
  redis.call('PUBLISH', EVENTS, 'cancelled ' .. id)
end
