-- Park a leased job until its children (see flow_note in common) have ended: store the
-- children given here (in this queue) with the job as their dependent, give the lease
-- and the attempt back, and wait 'blocked' while a child's outcome is missing. The job
-- keeps where each child is in 'c:<edge name>' ([queue, id]: Backend.spawned).
-- KEYS: common.  ARGV: 1 base, 2 id, 3 token, 4 spawn id (the children's flow id),
--   5 JSON array of every child's [edge name, queue, id], 6 JSON array of child items as flow_add
--   takes them (those of this queue; the others were stored before)
-- Returns: 0 token not current (nothing changed); 1 parked; 2 waiting again at once;
--   3 cancelled (its cancellation was asked for while it ran).
--@include common
--@include add_job
local id = ARGV[2]
local k = jkey(id)
touch(k)
if redis.call('HGET', k, 'tok') ~= ARGV[3] then return 0 end
local items = cjson.decode(ARGV[6])
if CLUSTER then  -- every key it may write, before the first write (see CLUSTER)
  touch_job(id, k)
  local rows = {}
  for i = 1, #items do rows[i] = items[i][1] end
  touch_rows(rows)
  touch(BASE .. 'blocked', BASE .. 'handoff')
end
start_adding(#items)
for i = 1, #items do
  local row, fdn = items[i][1], items[i][2]
  if redis.call('EXISTS', jkey(row[1])) == 0 and add_job(row) == 1 then
    redis.call('HSET', jkey(row[1]), 'fl', ARGV[4], 'fdn', fdn)
  end
end
publish_added()
local children = cjson.decode(ARGV[5])
for _, child in ipairs(children) do
  redis.call('HSET', k, 'c:' .. child[1], cjson.encode({child[2], child[3]}))
end
redis.call('ZREM', K_ACTIVE, id)
finished()
group_left(redis.call('HGET', k, 'grp'))
if redis.call('HGET', k, 'cxl') == '1' then
  to_cancelled(id, k)
  return 3
end
redis.call('HDEL', k, 'tok')
redis.call('HINCRBY', k, 'att', -1)
local pending = 0
for _, child in ipairs(children) do
  if redis.call('HEXISTS', k, 'd:' .. child[1]) == 0 then pending = pending + 1 end
end
if pending > 0 then
  redis.call('HSET', k, 'state', 'blocked', 'fpn', pending)
  redis.call('ZADD', BASE .. 'blocked', NOW_S, id)
  if #items > 0 then wake() end
  return 1
end
push_waiting(id, k, false)
wake()
publish(EVENTS, 'waiting ' .. id)
return 2
