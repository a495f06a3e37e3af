-- Delete finished jobs of one state older than an age.
-- KEYS: common.  ARGV: 1 base, 2 state (completed|failed|cancelled), 3 age ms,
--   4 limit (<= 1000: unpack() has a stack limit; the caller loops)
-- Returns: how many were deleted.
--@include common
local set_key = BASE .. ARGV[2]
local ids = redis.call('ZRANGEBYSCORE', set_key, '-inf', NOW_US - tonumber(ARGV[3]) * 1000,
  'LIMIT', 0, tonumber(ARGV[4]))
if #ids == 0 then return 0 end
local n = delete_jobs(ids)
if n > 0 then redis.call('ZREM', set_key, unpack(ids, 1, n)) end
-- Stopped by a slot migration (see CLUSTER): what was deleted stays so, try again.
if n < #ids then touch_removal(ids[n + 1], jkey(ids[n + 1])) end
return n
