-- Record results of leased jobs, fenced by their tokens, count them (totals and history
-- by run time), then apply retention.
-- KEYS: common.  ARGV: 1 base, 2 keep count (-1 = all), 3 max age ms (-1 = for ever),
--   then 4 fields per job: id, token, result (JSON), outcomes its worker notifies ("" none)
-- Returns: one integer per job, 1 = completed, 0 = token not current (nothing changed).
--@include common
local out = {}
local done_ids = {}
local done = 0
local score = NOW_US
local hist, total = {}, 0
-- The active set's removals and the completed set's additions go as one command each
-- per batch (a redis.call costs more than the work of either), sent before anything
-- that may read those sets (flow_note) and before retention.
local gone, kept = {}, {}
local function move()
  for i = 1, #gone, 1000 do
    redis.call('ZREM', K_ACTIVE, unpack(gone, i, math.min(i + 999, #gone)))
  end
  for i = 1, #kept, 1000 do
    redis.call('ZADD', K_COMPLETED, unpack(kept, i, math.min(i + 999, #kept)))
  end
  gone, kept = {}, {}
end
if CLUSTER then
  for i = 4, #ARGV, 4 do touch_job(ARGV[i], jkey(ARGV[i])) end
end
for i = 4, #ARGV, 4 do
  local id = ARGV[i]
  local k = jkey(id)
  local f = redis.call('HMGET', k, 'tok', 'stime', 'grp', 'nfy', 'fdn')
  if f[1] == ARGV[i + 1] then
    local ms = NOW - tonumber(f[2] or NOW)
    local b = bucket_of(ms)
    hist[b] = (hist[b] or 0) + 1
    total = total + ms
    redis.call('HDEL', k, 'tok', 'cxl')
    redis.call('HSET', k, 'state', 'completed', 'res', ARGV[i + 2], 'ftime', NOW_S)
    local n = merged(f[4], ARGV[i + 3])
    if n then outbox(id, k, 'completed', n) end
    group_left(f[3])
    gone[#gone + 1] = id
    kept[#kept + 1] = score
    kept[#kept + 1] = id
    if f[5] then
      move()
      flow_note(id, k, 'completed')
    end
    score = score + 1
    done_ids[#done_ids + 1] = id
    out[#out + 1] = 1
    done = done + 1
  else
    out[#out + 1] = 0
  end
end
if done > 0 then
  move()
  publish(EVENTS, 'completed ' .. table.concat(done_ids, ' '))
  finished()
  redis.call('HINCRBY', K_META, 'm:completed', done)
  redis.call('HINCRBYFLOAT', K_META, 'm:sum', total / 1000)
  for b, n in pairs(hist) do
    redis.call('HINCRBY', K_META, 'm:b' .. b, n)
    history_add(KINDS[b], n)
  end
  retain(K_COMPLETED, tonumber(ARGV[2]), tonumber(ARGV[3]))
end
return out
