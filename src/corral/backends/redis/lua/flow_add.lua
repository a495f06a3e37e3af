-- Store jobs of a flow (see flow_note in common): jobs with dependencies 'blocked',
-- the others as enqueue stores them; a job id that exists is left untouched.
-- KEYS: common; then, off a cluster, the common keys of each further queue (ARGV 4),
--   then when ARGV 5 is given the flow's record key and list_flows' index.
-- ARGV: 1 base, 2 flow id, 3 JSON array of [row (see add_job), dependents (JSON text
--   for 'fdn', "" none), how many dependencies (0 = none)];
--   4 (optional) JSON array of [base, items as ARGV 3] of further queues (off a
--     cluster only: one server, so a flow over several queues is one atomic step);
--   5 (optional) the flow's record, stored when it does not exist (else nothing is
--     done), and listed in the index with ARGV 7, its created_at (ms): an existing
--     record stored by an older version, which had no listing, is listed too;
--   6 (optional, a creation intent's step, see flows.py) its number: noted in this
--     queue ('fa:<step>:<flow id>', kept a day), and nothing is done when noted already,
--     so a step applied again never adds a job that ended and was deleted since.
-- Returns: 1 when the jobs were added (0: the record or the note existed), then per
--   queue 1 when the queue is new (see enqueue.lua).
--@include common
--@include add_job
local flow_id = ARGV[2]

local function add_items(items, note)
  if CLUSTER then  -- every key it may write, before the first write (see CLUSTER)
    local rows = {}
    for i = 1, #items do rows[i] = items[i][1] end
    touch_rows(rows)
    touch(BASE .. 'blocked')
    if note then touch(note) end
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
      redis.call('HSET', k, 'fl', flow_id)
      if fdn ~= '' then redis.call('HSET', k, 'fdn', fdn) end
    end
  end
  if note then redis.call('SET', note, '1', 'EX', '86400') end
  if created > 0 then wake() end
  publish_added()
  return redis.call('HSETNX', K_META, 'reg', '1')
end

local further = {}
if ARGV[4] and ARGV[4] ~= '' then further = cjson.decode(ARGV[4]) end
if ARGV[5] and ARGV[5] ~= '' then
  local record, index = KEYS[#KEYS - 1], KEYS[#KEYS]
  local stored = redis.call('GET', record)
  if stored then
    redis.call('ZADD', index, 'NX', cjson.decode(stored).at, flow_id)
    return {0}
  end
  redis.call('SET', record, ARGV[5])
  redis.call('ZADD', index, 'NX', ARGV[7], flow_id)
end
local note = nil
if ARGV[6] and ARGV[6] ~= '' then
  note = BASE .. 'fa:' .. ARGV[6] .. ':' .. flow_id
  touch(note)
  if redis.call('EXISTS', note) == 1 then return {0, 0} end
end
local reply = {1, add_items(cjson.decode(ARGV[3]), note)}
for q = 1, #further do
  local keys = {}
  for i = 1, 8 do keys[i] = KEYS[q * 8 + i] end
  begin(keys, {further[q][1]})
  reply[#reply + 1] = add_items(further[q][2], nil)
end
return reply
