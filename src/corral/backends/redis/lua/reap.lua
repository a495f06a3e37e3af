-- Recover active jobs whose lease expired (their worker died or was blocked).
-- Each goes back to waiting with its attempt given back, or past max_stalls ends failed
-- (counted in the totals and the history).
-- KEYS: common.  ARGV: 1 base, 2 max_stalls, 3 keep count, 4 max age ms (failed set),
--   5 keep count, 6 max age ms (cancelled set)
-- Returns: {requeued ids, failed ids}
--@include common
local max = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', K_ACTIVE, '-inf', '(' .. NOW, 'LIMIT', 0, 1000)
local requeued, failed, cancelled = {}, {}, false
if CLUSTER then
  for _, id in ipairs(ids) do touch_job(id, jkey(id), true) end
end
-- Backwards: each requeued job goes to the front, so they keep lease order.
for i = #ids, 1, -1 do
  local id = ids[i]
  local k = jkey(id)
  redis.call('ZREM', K_ACTIVE, id)
  group_left(redis.call('HGET', k, 'grp'))
  local stalls = redis.call('HINCRBY', k, 'stalls', 1)
  if redis.call('HGET', k, 'cxl') == '1' then
    to_cancelled(id, k)
    cancelled = true
  elseif stalls > max then
    redis.call('HDEL', k, 'tok')
    local msg = 'lease expired ' .. stalls .. ' times (worker died or was blocked); max_stalls is ' .. max
    local f = redis.call('HMGET', k, 'att', 'wkr')
    redis.call('RPUSH', has_errors(id, k), cjson.encode({type = 'Stalled', message = msg,
      attempt = tonumber(f[1]), at = NOW, worker = f[2] or nil}))
    redis.call('HSET', k, 'state', 'failed', 'ftime', NOW)
    outbox(id, k, 'failed', redis.call('HGET', k, 'nfy'))
    redis.call('ZADD', K_FAILED, NOW_US, id)
    redis.call('HINCRBY', K_META, 'm:failed', 1)
    publish(EVENTS, 'failed ' .. id)
    flow_note(id, k, 'failed')
    failed[#failed + 1] = id
  else
    redis.call('HDEL', k, 'tok')
    redis.call('HINCRBY', k, 'att', -1)
    push_waiting(id, k, true)
    requeued[#requeued + 1] = id
  end
end
if #requeued > 0 then wake() end
if #failed > 0 then
  finished()
  history_add('f', #failed)
  retain(K_FAILED, tonumber(ARGV[3]), tonumber(ARGV[4]))
end
if cancelled then retain(K_CANCELLED, tonumber(ARGV[5]), tonumber(ARGV[6])) end
return {requeued, failed}
