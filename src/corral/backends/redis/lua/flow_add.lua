-- Store jobs of a flow in this queue (see flow_note in common): jobs with dependencies
-- 'blocked', the others as enqueue stores them; a job id that exists is left untouched.
-- KEYS: common.  ARGV: 1 base, 2 flow id, 3 JSON array of [row (see add_job), dependents
--   (JSON text for 'fdn', "" none), how many dependencies (0 = none)]
-- Returns: how many jobs were created, then 1 when the queue is new (see enqueue.lua).
--@include common
--@include add_job
local items = cjson.decode(ARGV[3])
if CLUSTER then  -- every key it may write, before the first write (see CLUSTER)
  local rows = {}
  for i = 1, #items do rows[i] = items[i][1] end
  touch_rows(rows)
  touch(BASE .. 'blocked')
end
local created = 0
start_adding(#items)
for i = 1, #items do
  local row, fdn, deps = items[i][1], items[i][2], items[i][3]
  local id = row[1]
  local k = jkey(id)
  if redis.call('EXISTS', k) == 0 then
    if deps > 0 then
      local fields = {'name', row[2], 'data', row[3], 'ctime', NOW_S, 'state', 'blocked',
        'fpn', deps}
      local x = row[8]
      if row[4] ~= 0 or x.g then
        fields[#fields + 1] = 'ws'
        fields[#fields + 1] = score(ws_of(row[4], next_seq()))
      end
      if row[7] ~= '' then fields[#fields + 1] = 'opts'; fields[#fields + 1] = row[7] end
      if x.g then fields[#fields + 1] = 'grp'; fields[#fields + 1] = x.g end
      if x.n then fields[#fields + 1] = 'nfy'; fields[#fields + 1] = x.n end
      redis.call('HSET', k, unpack(fields))
      redis.call('ZADD', BASE .. 'blocked', NOW_S, id)
      ADDED[#ADDED + 1] = id
      created = created + 1
    elseif add_job(row) == 1 then
      created = created + 1
    end
    redis.call('HSET', k, 'fl', ARGV[2])
    if fdn ~= '' then redis.call('HSET', k, 'fdn', fdn) end
  end
end
if created > 0 then wake() end
publish_added()
return {created, redis.call('HSETNX', K_META, 'reg', '1')}
