-- Put failed or cancelled jobs back to waiting with fresh attempts.
-- KEYS: common.  ARGV: 1 base, then job ids
-- Returns: one integer per id, 1 = requeued, 0 = missing or in another state.
--@include common
local out = {}
local any = false
if CLUSTER then
  for i = 2, #ARGV do touch_job(ARGV[i], jkey(ARGV[i])) end
end
for i = 2, #ARGV do
  local id = ARGV[i]
  local k = jkey(id)
  local state = redis.call('HGET', k, 'state')
  if state == 'failed' or state == 'cancelled' then
    redis.call('ZREM', BASE .. state, id)
    redis.call('HSET', k, 'att', 0, 'stalls', 0)
    redis.call('HDEL', k, 'ftime', 'cxl')
    push_waiting(id, k, false)
    publish(EVENTS, 'waiting ' .. id)
    out[#out + 1] = 1
    any = true
  else
    out[#out + 1] = 0
  end
end
if any then wake() end
return out
