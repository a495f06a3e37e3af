-- Make a delayed job waiting now.
-- KEYS: common.  ARGV: 1 base, 2 id
-- Returns: 1 promoted, 0 not delayed.
--@include common
local id = ARGV[2]
local k = jkey(id)
touch(k)
if redis.call('HGET', k, 'state') ~= 'delayed' then return 0 end
touch_job(id, k)
redis.call('ZREM', K_DELAYED, id)
push_waiting(id, k, false)
wake()
return 1
