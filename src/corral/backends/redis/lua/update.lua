-- Set a leased job's progress and/or append log lines, fenced by its token.
-- KEYS: common.  ARGV: 1 base, 2 id, 3 token, 4 has_progress (1/0), 5 progress (JSON),
--   then log lines
-- Returns: 1 applied, 0 token not current.
--@include common
local id = ARGV[2]
local k = jkey(id)
touch(k)
if redis.call('HGET', k, 'tok') ~= ARGV[3] then return 0 end
if #ARGV > 5 then touch(BASE .. 'jl:' .. id) end
if ARGV[4] == '1' then
  redis.call('HSET', k, 'prog', ARGV[5])
  publish(EVENTS, 'progress ' .. id)
end
if #ARGV > 5 then
  local logs = has_logs(id, k)
  for i = 6, #ARGV do redis.call('RPUSH', logs, ARGV[i]) end
  redis.call('LTRIM', logs, -1000, -1)
  publish(EVENTS, 'log ' .. id)
end
return 1
