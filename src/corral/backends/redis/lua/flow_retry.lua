-- Put failed or cancelled jobs of a flow back (see flow_note in common), with fresh
-- attempts: to 'blocked' while a dependency's outcome is missing, else to waiting.
-- KEYS: common.  ARGV: 1 base, 2 JSON array of [id, its generation after this retry,
--   names of all its dependencies, [[name, generation]] of those retried with it]
-- Returns: how many jobs were put back (a job no longer failed or cancelled is skipped).
--@include common
local items = cjson.decode(ARGV[2])
if CLUSTER then  -- every key it may write, before the first write (see CLUSTER)
  for i = 1, #items do touch_job(items[i][1], jkey(items[i][1])) end
end
local n = 0
for i = 1, #items do
  local id, gen, deps, again = unpack(items[i])
  local k = jkey(id)
  local state = redis.call('HGET', k, 'state')
  if state == 'failed' or state == 'cancelled' then
    redis.call('ZREM', BASE .. state, id)
    redis.call('HSET', k, 'att', 0, 'stalls', 0, 'fgen', gen)
    redis.call('HDEL', k, 'ftime', 'cxl')
    for _, pair in ipairs(again) do
      redis.call('HDEL', k, 'd:' .. pair[1])
      redis.call('HSET', k, 'g:' .. pair[1], pair[2])
    end
    local pending = 0
    for _, name in ipairs(deps) do
      if redis.call('HEXISTS', k, 'd:' .. name) == 0 then pending = pending + 1 end
    end
    if pending > 0 then
      redis.call('HSET', k, 'state', 'blocked', 'fpn', pending)
      redis.call('ZADD', BASE .. 'blocked', NOW_S, id)
    else
      push_waiting(id, k, false)
      wake()
      publish(EVENTS, 'waiting ' .. id)
    end
    n = n + 1
  end
end
return n
