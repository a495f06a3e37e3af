-- Lease up to N waiting jobs (promoting due delayed jobs first), within the queue's
-- limits: at most max_active jobs active across all workers, at most rate_max starts
-- per rate_ms (a sliding log of start times in BASE..'rate').
-- With grouped jobs waiting, groups (and the ungrouped jobs as one more) take turns,
-- one job per turn, each group within its own cap (gmax) and rate (grate per grate_ms).
-- KEYS: common.  ARGV: 1 base, 2 count, 3 lease_ms, 4 token prefix (unique per call), 5 worker id
-- Returns: {ms until the next delayed job or held group is due or -1, paused 0/1,
--           then 7 fields per job: id, name, data, attempt, token, options, stalls}
--@include common
local due = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', NOW_S, 'WITHSCORES', 'LIMIT', '0', '1000')
if #due > 0 then
  -- Due jobs join the back of the line by due time, then by the order they were added.
  local order, ids = {}, {}
  for i = 1, #due, 2 do
    touch(jkey(due[i]))
    local f = redis.call('HMGET', jkey(due[i]), 'ws', 'grp')
    order[#order + 1] = {due[i], tonumber(due[i + 1]), tonumber(f[1] or '0'), f}
    ids[#ids + 1] = due[i]
    if f[2] then touch(G_PREFIX .. f[2]) end
  end
  table.sort(order, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[3] < b[3]
  end)
  for _, job in ipairs(order) do push_waiting(job[1], jkey(job[1]), false, job[4]) end
  redis.call('ZREM', K_DELAYED, unpack(ids))
end

local meta = redis.call('HMGET', K_META, 'paused', 'max_active', 'rate_max', 'rate_ms',
  'gmax', 'grate', 'grate_ms', 'uturn')
if meta[1] == '1' then return {-1, 1} end

local count = tonumber(ARGV[2])
if meta[2] then
  -- A finishing job wakes a blocked worker when a cap is set (see finished()).
  count = math.min(count, tonumber(meta[2]) - redis.call('ZCARD', K_ACTIVE))
  if count <= 0 then return {-1, 0} end
end
local rate_key = BASE .. 'rate'
if meta[3] then
  local window = tonumber(meta[4])
  redis.call('ZREMRANGEBYSCORE', rate_key, '-inf', NOW - window)
  local room = tonumber(meta[3]) - redis.call('ZCARD', rate_key)
  if room <= 0 then
    -- Come back when the oldest start leaves the window; the jobs simply wait.
    local oldest = redis.call('ZRANGE', rate_key, 0, 0, 'WITHSCORES')
    return {math.max(1, tonumber(oldest[2]) + window - NOW), 0}
  end
  count = math.min(count, room)
end

-- Take up to n ungrouped job ids in line order: jobs above the default priority, then
-- the default priority's list, then the jobs below it. On a cluster, none when their
-- hashes are not all on this node (see CLUSTER; MOVING says to come back soon).
local MOVING = false
local function pop_ungrouped(n)
  local sorted = redis.call('EXISTS', K_WAIT) == 1
  local ids, high = {}, 0
  if sorted then
    ids = redis.call('ZRANGEBYSCORE', K_WAIT, '-inf', '(' .. score(1000 * BAND), 'LIMIT', 0, n)
    high = #ids
  end
  local listed = {}
  if #ids < n then
    -- Off a cluster nothing moves: popped at once.
    if CLUSTER then
      listed = redis.call('LRANGE', K_FIFO, 0, n - #ids - 1)
    else
      listed = redis.call('LPOP', K_FIFO, n - #ids) or {}
    end
    for _, id in ipairs(listed) do ids[#ids + 1] = id end
  end
  if sorted and #ids < n then
    local low = redis.call('ZRANGEBYSCORE', K_WAIT, score(1000 * BAND), '+inf', 'LIMIT', 0,
      n - #ids)
    for _, id in ipairs(low) do ids[#ids + 1] = id end
  end
  if CLUSTER and #ids > 0 then
    local keys = {}
    for i, id in ipairs(ids) do keys[i] = jkey(id) end
    if not here_all(keys) then
      MOVING = true
      return {}
    end
    if #listed > 0 then redis.call('LTRIM', K_FIFO, #listed, -1) end
  end
  if #ids > #listed then
    local taken = {}
    for i, id in ipairs(ids) do
      if i <= high or i > high + #listed then taken[#taken + 1] = id end
    end
    for i = 1, #taken, 1000 do
      redis.call('ZREM', K_WAIT, unpack(taken, i, math.min(i + 999, #taken)))
    end
  end
  return ids
end

-- Pick up to `count` job ids taking turns: the lowest turn in GROUPS goes next, the
-- ungrouped jobs' turn is meta 'uturn'. A group over its limits leaves the line
-- (see line_up and group_left) instead of being skipped again and again.
local function pick_fair()
  local gmax, grate, grate_ms = tonumber(meta[5]), tonumber(meta[6]), tonumber(meta[7])
  local back = redis.call('ZRANGEBYSCORE', GPARKED, '-inf', NOW, 'LIMIT', 0, 100)
  for _, g in ipairs(back) do
    -- (A group whose line is on another node stays parked until it is here.)
    if here(G_PREFIX .. g) then
      redis.call('ZREM', GPARKED, g)
      if redis.call('EXISTS', G_PREFIX .. g) == 1 then line_up(g) end
    end
  end
  local ids = {}
  local uturn = tonumber(meta[8] or '0')
  local ungrouped = redis.call('ZCARD', K_WAIT) + redis.call('LLEN', K_FIFO)
  local guard = count + 100
  while #ids < count and guard > 0 do
    guard = guard - 1
    local head = redis.call('ZRANGE', GROUPS, 0, 0, 'WITHSCORES')
    local g = head[1]
    if ungrouped > 0 and (not g or uturn <= tonumber(head[2])) then
      local id = pop_ungrouped(1)[1]
      if not id then break end  -- its hash is on another node
      ids[#ids + 1] = id
      ungrouped = ungrouped - 1
      uturn = next_turn()
    elseif not g then
      break
    else
      local gk = G_PREFIX .. g
      local rk = BASE .. 'grate:' .. g
      if CLUSTER then
        -- This turn's keys, read before its writes: the turns before are kept.
        if not here(gk) or (grate and not here(rk)) then MOVING = true; break end
        local head_id = redis.call('ZRANGE', gk, 0, 0)[1]
        if head_id and not here(jkey(head_id)) then MOVING = true; break end
      end
      local held = false
      if gmax and tonumber(redis.call('HGET', GACTIVE, g) or '0') >= gmax then
        redis.call('ZREM', GROUPS, g)
        redis.call('SADD', GCAPPED, g)
        held = true
      elseif grate then
        redis.call('ZREMRANGEBYSCORE', rk, '-inf', NOW - grate_ms)
        if redis.call('ZCARD', rk) >= grate then
          local oldest = redis.call('ZRANGE', rk, 0, 0, 'WITHSCORES')
          redis.call('ZREM', GROUPS, g)
          redis.call('ZADD', GPARKED, tonumber(oldest[2]) + grate_ms, g)
          held = true
        end
      end
      if not held then
        local id = redis.call('ZPOPMIN', gk, 1)[1]
        if id then
          redis.call('ZREM', GW, id)
          redis.call('HINCRBY', GACTIVE, g, 1)
          if grate then
            redis.call('ZADD', rk, NOW, ARGV[4] .. 'g' .. #ids)
            redis.call('PEXPIRE', rk, grate_ms)
          end
          ids[#ids + 1] = id
        end
        if redis.call('EXISTS', gk) == 1 then
          redis.call('ZADD', GROUPS, next_turn(), g)
        else
          redis.call('ZREM', GROUPS, g)
        end
      end
    end
  end
  redis.call('HSET', K_META, 'uturn', uturn)
  return ids
end

local ids = {}
if redis.call('EXISTS', GW) == 0 then
  ids = pop_ungrouped(count)
else
  ids = pick_fair()
end

local out = {-1, 0}
local deadline = tostring(NOW + tonumber(ARGV[3]))
local n = 0
-- The batch enters the active set in one ZADD (a redis.call costs more than its work).
local leased = {}
for _, id in ipairs(ids) do
  local k = jkey(id)
  local f = redis.call('HMGET', k, 'name', 'data', 'opts', 'stalls', 'att')
  if f[1] then
    n = n + 1
    local tok = ARGV[4] .. int_text(n)
    -- One write per job: each access to a job's key is a cache miss in a big backlog.
    local att = tonumber(f[5] or '0') + 1
    redis.call('HSET', k, 'att', int_text(att), 'state', 'active', 'tok', tok, 'stime', NOW_S,
      'wkr', ARGV[5])
    leased[#leased + 1] = deadline
    leased[#leased + 1] = id
    if meta[3] then redis.call('ZADD', rate_key, NOW_S, tok) end
    out[#out + 1] = id
    out[#out + 1] = f[1]
    out[#out + 1] = f[2]
    out[#out + 1] = att
    out[#out + 1] = tok
    out[#out + 1] = f[3] or ''
    out[#out + 1] = tonumber(f[4] or '0')
  end
end
for i = 1, #leased, 1000 do
  redis.call('ZADD', K_ACTIVE, unpack(leased, i, math.min(i + 999, #leased)))
end
if n > 0 then
  -- One message for the batch: "active <id> <id> ...".
  local ids_out = {}
  for i = 3, #out, 7 do ids_out[#ids_out + 1] = out[i] end
  publish(EVENTS, 'active ' .. table.concat(ids_out, ' '))
end
if n == 0 then
  local nxt = redis.call('ZRANGE', K_DELAYED, '0', '0', 'WITHSCORES')
  local parked = redis.call('ZRANGE', GPARKED, '0', '0', 'WITHSCORES')
  local at = nil
  if #nxt > 0 then at = tonumber(nxt[2]) end
  if #parked > 0 and (not at or tonumber(parked[2]) < at) then at = tonumber(parked[2]) end
  if at then out[1] = math.max(0, at - NOW) end
  -- A slot migration held jobs back: come back soon rather than wait for a wake-up.
  if MOVING and (not at or at - NOW > 50) then out[1] = 50 end
elseif redis.call('EXISTS', K_WAIT, K_FIFO, GROUPS) > 0 then
  -- More work remains: pass the wake-up on to another blocked worker.
  wake()
end
return out
