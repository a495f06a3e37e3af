-- Record a failed attempt, then retry the job (via delayed) or dead-letter it (counted
-- in the totals and the history).
-- A job whose cancellation was requested ends cancelled instead of retrying.
-- KEYS: common.  ARGV: 1 base, 2 id, 3 token, 4 error (JSON), 5 retry_in_ms (-1 = dead-letter),
--   6 count_attempt (1/0), 7 keep count, 8 max age ms (retention of the failed set),
--   9 keep count, 10 max age ms (retention of the cancelled set), 11 outcomes its worker
--   notifies ("" none)
-- Returns: 0 token not current; 1 retrying; 2 failed; 3 cancelled
--@include common
local id = ARGV[2]
local k = jkey(id)
touch(k)
if redis.call('HGET', k, 'tok') ~= ARGV[3] then return 0 end
touch_job(id, k, true)
local errs = has_errors(id, k)
redis.call('RPUSH', errs, ARGV[4])
redis.call('LTRIM', errs, -100, -1)
redis.call('ZREM', K_ACTIVE, id)
finished()
group_left(redis.call('HGET', k, 'grp'))
if redis.call('HGET', k, 'cxl') == '1' then
  to_cancelled(id, k, ARGV[11])
  retain(K_CANCELLED, tonumber(ARGV[9]), tonumber(ARGV[10]))
  return 3
end
redis.call('HDEL', k, 'tok')
local retry = tonumber(ARGV[5])
if retry >= 0 then
  if ARGV[6] == '0' then redis.call('HINCRBY', k, 'att', -1) end
  if retry == 0 then
    push_waiting(id, k, false)
  else
    redis.call('HSET', k, 'state', 'delayed', 'rtime', NOW + retry)
    redis.call('ZADD', K_DELAYED, NOW + retry, id)
  end
  wake()
  redis.call('HINCRBY', K_META, 'm:retried', 1)
  publish(EVENTS, 'retrying ' .. id)
  return 1
end
redis.call('HSET', k, 'state', 'failed', 'ftime', NOW)
outbox(id, k, 'failed', merged(redis.call('HGET', k, 'nfy'), ARGV[11]))
redis.call('ZADD', K_FAILED, NOW_US, id)
redis.call('HINCRBY', K_META, 'm:failed', 1)
history_add('f', '1')
publish(EVENTS, 'failed ' .. id)
flow_note(id, k, 'failed')
retain(K_FAILED, tonumber(ARGV[7]), tonumber(ARGV[8]))
return 2
