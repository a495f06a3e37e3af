-- Hand leased jobs back to waiting without spending their attempt (worker shutdown).
-- A job whose cancellation was requested ends cancelled instead.
-- KEYS: common.  ARGV: 1 base, 2 keep count, 3 max age ms (cancelled set), then pairs: id, token
-- Returns: how many jobs were released.
--@include common
local n, cancelled = 0, false
if CLUSTER then
  for i = 4, #ARGV, 2 do touch_job(ARGV[i], jkey(ARGV[i])) end
end
-- Backwards: each goes to the front, so they end up there in the order given.
for i = #ARGV - 1, 4, -2 do
  local id = ARGV[i]
  local k = jkey(id)
  if redis.call('HGET', k, 'tok') == ARGV[i + 1] then
    redis.call('ZREM', K_ACTIVE, id)
    group_left(redis.call('HGET', k, 'grp'))
    if redis.call('HGET', k, 'cxl') == '1' then
      to_cancelled(id, k)
      cancelled = true
    else
      redis.call('HDEL', k, 'tok')
      redis.call('HINCRBY', k, 'att', -1)
      push_waiting(id, k, true)
    end
    n = n + 1
  end
end
if cancelled then retain(K_CANCELLED, tonumber(ARGV[2]), tonumber(ARGV[3])) end
if n > 0 then wake() end
return n
