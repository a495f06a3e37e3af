-- Forget a queue left with nothing: no job in any state, no schedule, no limits, not
-- paused. What is left of it (its meta hash with its totals, the wake-up marker, group
-- and rate bookkeeping) is deleted; the caller drops it from the queue registry.
-- Deleting the meta hash also clears 'reg', so the queue's next enqueue registers it
-- again (see enqueue.lua).
-- KEYS: common.  ARGV: 1 base
-- Returns: 1 forgotten, 0 kept.
--@include common
if redis.call('EXISTS', K_WAIT, K_ACTIVE, K_DELAYED, K_COMPLETED, K_FAILED, K_CANCELLED,
    K_FIFO, GW, BASE .. 'sched', BASE .. 'outbox') > 0 then
  return 0
end
local held = redis.call('HMGET', K_META, 'paused', 'max_active', 'rate_max', 'gmax', 'grate')
for i = 1, 5 do
  if held[i] then return 0 end
end
redis.call('DEL', K_META, K_MARKER, GROUPS, GACTIVE, GCAPPED, GPARKED, BASE .. 'rate',
  BASE .. 'sched:next', BASE .. 'sched:last')
return 1
