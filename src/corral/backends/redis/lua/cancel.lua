-- Cancel a job: waiting, delayed or blocked ones at once (a flow's dependents hear of it); an active one is flagged and its
-- worker told on the control channel.
-- KEYS: common.  ARGV: 1 base, 2 id, 3 keep count, 4 max age ms (cancelled set)
-- Returns: the state after the call ('cancelled', 'active'), the unchanged terminal
--   state, or 'missing'.
--@include common
local id = ARGV[2]
local k = jkey(id)
touch(k)
local state = job_state(k)
if not state then return 'missing' end
touch_job(id, k)
if state == 'waiting' or state == 'delayed' then
  if state == 'waiting' then unwait(id, k) else redis.call('ZREM', K_DELAYED, id) end
  to_cancelled(id, k)
  retain(K_CANCELLED, tonumber(ARGV[3]), tonumber(ARGV[4]))
  return 'cancelled'
end
if state == 'blocked' then
  redis.call('ZREM', BASE .. 'blocked', id)
  to_cancelled(id, k)
  retain(K_CANCELLED, tonumber(ARGV[3]), tonumber(ARGV[4]))
  return 'cancelled'
end
if state == 'active' then
  redis.call('HSET', k, 'cxl', '1')
  publish(CONTROL, 'cancel ' .. id)
end
return state
