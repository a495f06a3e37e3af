-- Store one new job as waiting or delayed (needs "common" first).
-- ext: "" or JSON {g = group, k = dedupe key, w = dedupe window ms, d = debounce ms}.
-- Returns 1 when created, else the id of the job that stands for this add: the same
-- id (it exists: left untouched) or the holder of the dedupe key (for a debounced
-- add: updated with this add's name, data and options, and its start pushed back).
local function add_job(id, name, data, prio, delay, at, opts, ext)
  local k = jkey(id)
  if redis.call('EXISTS', k) == 1 then return id end
  local x = {}
  if ext ~= '' then x = cjson.decode(ext) end
  local dkey = nil
  if x.k then
    dkey = BASE .. 'dd:' .. x.k
    local holder = redis.call('GET', dkey)
    if holder then
      local hk = jkey(holder)
      local st = redis.call('HGET', hk, 'state')
      if x.d then
        if st == 'waiting' or st == 'delayed' then
          if st == 'waiting' then unwait(holder, hk) else redis.call('ZREM', K_DELAYED, holder) end
          redis.call('HSET', hk, 'name', name, 'data', data, 'state', 'delayed', 'rtime', NOW + x.d)
          if opts ~= '' then redis.call('HSET', hk, 'opts', opts) else redis.call('HDEL', hk, 'opts') end
          redis.call('ZADD', K_DELAYED, NOW + x.d, holder)
          redis.call('PUBLISH', EVENTS, 'debounced ' .. holder)
          return holder
        end
      elseif st and (x.w or st == 'waiting' or st == 'delayed' or st == 'active') then
        -- A window holds the key for its length; otherwise until the job finishes.
        return holder
      end
    end
  end
  prio = tonumber(prio)
  local seq = redis.call('HINCRBY', K_META, 'seq', 1)
  -- Higher priority sorts first; the sequence keeps FIFO within a priority.
  local ws = string.format('%.0f', (1000 - prio) * 4398046511104 + seq)
  delay, at = tonumber(delay), tonumber(at)
  if x.d then delay, at = x.d, 0 end
  local run_at = 0
  if at > 0 then run_at = at elseif delay > 0 then run_at = NOW + delay end
  redis.call('HSET', k, 'name', name, 'data', data, 'prio', prio, 'ws', ws, 'ctime', NOW, 'att', 0)
  if opts ~= '' then redis.call('HSET', k, 'opts', opts) end
  if x.g then redis.call('HSET', k, 'grp', x.g) end
  if dkey then
    redis.call('HSET', k, 'ddk', x.k)
    if x.w then redis.call('SET', dkey, id, 'PX', x.w) else redis.call('SET', dkey, id) end
  end
  if run_at > NOW then
    redis.call('HSET', k, 'state', 'delayed', 'rtime', run_at)
    redis.call('ZADD', K_DELAYED, run_at, id)
  else
    redis.call('HSET', k, 'state', 'waiting')
    add_waiting(id, ws, x.g)
  end
  redis.call('PUBLISH', EVENTS, 'added ' .. id)
  return 1
end
