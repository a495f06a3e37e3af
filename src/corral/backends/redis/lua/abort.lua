-- End a leased job cancelled: its worker honoured a cancellation.
-- KEYS: common.  ARGV: 1 base, 2 id, 3 token, 4 reason (JSON error), 5 keep count, 6 max age ms,
--   7 outcomes its worker notifies ("" none)
-- Returns: 1 cancelled, 0 token not current.
--@include common
local id = ARGV[2]
local k = jkey(id)
touch(k)
if redis.call('HGET', k, 'tok') ~= ARGV[3] then return 0 end
touch_job(id, k, true)
redis.call('RPUSH', has_errors(id, k), ARGV[4])
redis.call('ZREM', K_ACTIVE, id)
finished()
group_left(redis.call('HGET', k, 'grp'))
to_cancelled(id, k, ARGV[7])
retain(K_CANCELLED, tonumber(ARGV[5]), tonumber(ARGV[6]))
return 1
