-- Fire one schedule tick: compare-and-set on the tick, enqueue its job, advance.
-- Several schedulers may race for a tick; exactly one wins, and the job and the new
-- tick are stored together, so a tick is never fired twice nor lost in between.
-- KEYS: common.  ARGV: 1 base, 2 schedule name, 3 expected tick ms, 4 next tick ms
--   (-1: none), then 0 or 1 job row (JSON, as enqueue.lua; none = skip this tick)
-- Returns: 1 fired (or skipped as asked), 0 the tick was not current (someone else won).
--@include common
--@include add_job
local name = ARGV[2]
local nxt = BASE .. 'sched:next'
local current = redis.call('ZSCORE', nxt, name)
if not current or tonumber(current) ~= tonumber(ARGV[3]) then return 0 end
if #ARGV >= 5 then
  local row = cjson.decode(ARGV[5])
  touch_rows({row})
  start_adding(1)
  if add_job(row) == 1 then
    wake()
  end
  publish_added()
  redis.call('HSET', BASE .. 'sched:last', name, ARGV[3])
end
if tonumber(ARGV[4]) >= 0 then
  redis.call('ZADD', nxt, ARGV[4], name)
else
  redis.call('ZREM', nxt, name)
end
return 1
