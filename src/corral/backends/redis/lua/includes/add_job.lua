-- Store one new job as waiting or delayed (needs "common" first). A script adding jobs
-- calls start_adding(n) first (n jobs will need at most n sequence numbers) and
-- publish_added() last (one "added" message for the batch: "added <id> <id> ...").
local ADDED

local function start_adding(n)
  ADDED = {}
  SEQ_BATCH = math.max(n, 1)
end

local function publish_added()
  if #ADDED > 0 then publish(EVENTS, 'added ' .. table.concat(ADDED, ' ')) end
end

-- (cluster) Stop the script unless every key adding `rows` may write is on this node
-- (see CLUSTER): called before the first row is added.
local function touch_rows(rows)
  if not CLUSTER then return end
  local keys = {}
  for _, row in ipairs(rows) do
    local x = row[8]
    keys[#keys + 1] = jkey(row[1])
    if x.g then keys[#keys + 1] = G_PREFIX .. x.g end
    if x.k then
      touch(BASE .. 'dd:' .. x.k)
      local holder = redis.call('GET', BASE .. 'dd:' .. x.k)
      if holder then touch_job(holder, jkey(holder)) end
    end
  end
  touch_all(keys)
end

-- A job comes as one row of JSON (records.job_row): {id, name, data, priority, delay_ms,
-- run_at_ms (0 = unset), options ("" = none), ext}; ext is {g = group, k = dedupe key,
-- w = dedupe window ms, d = debounce ms, r = request nonce (caller-chosen ids only),
-- n = outcomes to notify (see outbox in common)}, each optional.
-- Returns 1 when created, else the id of the job that stands for this add: the same
-- id (it exists: left untouched) or the holder of the dedupe key (for a debounced
-- add: updated with this add's name, data and options, and its start pushed back).
-- A job that exists with this add's request nonce was stored by this same request,
-- sent again after its reply was lost: 1.
local function add_job(row)
  local id, name, data, prio, delay, at, opts, x = unpack(row)
  local k = jkey(id)
  if redis.call('EXISTS', k) == 1 then
    if x.r and redis.call('HGET', k, 'rq') == x.r then return 1 end
    return id
  end
  local dkey = nil
  if x.k then
    dkey = BASE .. 'dd:' .. x.k
    local holder = redis.call('GET', dkey)
    if holder then
      local hk = jkey(holder)
      local st = job_state(hk)
      if x.d then
        if st == 'waiting' or st == 'delayed' then
          if st == 'waiting' then unwait(holder, hk) else redis.call('ZREM', K_DELAYED, holder) end
          redis.call('HSET', hk, 'name', name, 'data', data, 'state', 'delayed', 'rtime', NOW + x.d)
          if opts ~= '' then redis.call('HSET', hk, 'opts', opts) else redis.call('HDEL', hk, 'opts') end
          if x.n then redis.call('HSET', hk, 'nfy', x.n) else redis.call('HDEL', hk, 'nfy') end
          redis.call('ZADD', K_DELAYED, NOW + x.d, holder)
          publish(EVENTS, 'debounced ' .. holder)
          return holder
        end
      elseif st and (x.w or st == 'waiting' or st == 'delayed' or st == 'active') then
        -- A window holds the key for its length; otherwise until the job finishes.
        return holder
      end
    end
  end
  if x.d then delay, at = x.d, 0 end
  local run_at = 0
  if at > 0 then run_at = at elseif delay > 0 then run_at = NOW + delay end
  local delayed = run_at > NOW
  -- One HSET per job. The priority is not stored: it is read back from 'ws' (absent:
  -- 0), 'att' appears at the first claim and a waiting job has no 'state' (memory per
  -- waiting job is what a backlog costs).
  local fields = {'name', name, 'data', data, 'ctime', NOW_S}
  local sorted = prio ~= 0 or x.g
  local ws = nil
  if delayed or sorted then
    ws = score(ws_of(prio, next_seq()))
    fields[#fields + 1] = 'ws'
    fields[#fields + 1] = ws
  end
  if opts ~= '' then fields[#fields + 1] = 'opts'; fields[#fields + 1] = opts end
  if x.g then fields[#fields + 1] = 'grp'; fields[#fields + 1] = x.g end
  if x.r then fields[#fields + 1] = 'rq'; fields[#fields + 1] = x.r end
  if x.n then fields[#fields + 1] = 'nfy'; fields[#fields + 1] = x.n end
  if dkey then
    fields[#fields + 1] = 'ddk'
    fields[#fields + 1] = x.k
    if x.w then redis.call('SET', dkey, id, 'PX', x.w) else redis.call('SET', dkey, id) end
  end
  if delayed then
    fields[#fields + 1] = 'state'
    fields[#fields + 1] = 'delayed'
    fields[#fields + 1] = 'rtime'
    fields[#fields + 1] = run_at
    redis.call('HSET', k, unpack(fields))
    redis.call('ZADD', K_DELAYED, run_at, id)
  else
    -- No 'state': waiting is a hash without one (job_state). 16 bytes of listpack that
    -- keep the bench's job hash in jemalloc's 64-byte class instead of the 80-byte one.
    redis.call('HSET', k, unpack(fields))
    if sorted then enter_sorted(id, ws, x.g) else redis.call('RPUSH', K_FIFO, id) end
  end
  ADDED[#ADDED + 1] = id
  return 1
end
