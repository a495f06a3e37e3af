-- Take this queue's due flow handoffs (see flow_note in common), holding each for a
-- while: a worker that dies before passing them on leaves them to be taken again.
-- KEYS: common.  ARGV: 1 base, 2 how many at most, 3 hold ms
-- Returns: the entries (JSON text).
--@include common
local key = BASE .. 'handoff'
touch(key)
local items = redis.call('ZRANGEBYSCORE', key, '-inf', NOW_S, 'LIMIT', 0, tonumber(ARGV[2]))
local hold = NOW + tonumber(ARGV[3])
for _, entry in ipairs(items) do redis.call('ZADD', key, hold, entry) end
return items
