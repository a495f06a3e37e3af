-- Record that a live worker serves this queue (its heartbeat), or that it stopped, in
-- the queue's own slot, so that facts.lua can count the queue's live workers. Entries
-- of workers that stopped beating expire with the key (their score is long past).
-- KEYS: common.  ARGV: 1 base, 2 worker id, 3 ttl ms (0 = the worker stopped)
-- Returns: 1
--@include common
local key = BASE .. 'wk'
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', NOW_S)
if ttl > 0 then
  redis.call('ZADD', key, score(NOW + ttl), ARGV[2])
else
  redis.call('ZREM', key, ARGV[2])
end
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if #last > 0 then redis.call('PEXPIREAT', key, last[2]) end
return 1
