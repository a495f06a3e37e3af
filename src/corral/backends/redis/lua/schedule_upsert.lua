-- Create or change a schedule. With mode "keep", an identical definition keeps its
-- pending tick (a worker restart neither skips nor repeats one).
-- KEYS: common.  ARGV: 1 base, 2 name, 3 definition (JSON), 4 next tick ms (-1: none,
--   i.e. paused), 5 mode ("keep" | "replace")
-- Returns: 1 stored, 0 unchanged.
--@include common
local defs, nxt = BASE .. 'sched', BASE .. 'sched:next'
if ARGV[5] == 'keep' and redis.call('HGET', defs, ARGV[2]) == ARGV[3] then return 0 end
redis.call('HSET', defs, ARGV[2], ARGV[3])
if tonumber(ARGV[4]) >= 0 then
  redis.call('ZADD', nxt, ARGV[4], ARGV[2])
else
  redis.call('ZREM', nxt, ARGV[2])
end
return 1
