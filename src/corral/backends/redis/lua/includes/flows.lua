-- Flows: what a job's end does to the jobs of its flow (loaded right after common by
-- every script; common's ending helpers call flow_note, declared there).

-- Flows (issue 20; see backends/flow_records.py). A job of a flow with dependents has
-- 'fdn': a JSON array of [queue, key base, id, edge name, policy, pass] per dependent.
-- A job with dependencies starts 'blocked' (in the set BASE..'blocked', score = ctime)
-- with 'fpn' = dependencies not yet heard of; each outcome heard is kept in its hash as
-- 'd:<edge name>' = JSON [state, result or false, last error or false].

-- The outcome of a dependency reaches dependent `did` of this queue. Idempotent: an
-- outcome this edge already received is ignored (a handoff applied twice), and so is
-- one from before the dependency was retried with its flow (gen: the dependency's
-- 'fgen' when it ended; 'g:<edge name>' on the dependent: the generation it waits for).
-- The outcome is kept even when the dependent has ended (a retry counts on it).
local function flow_settle(did, name, state, res, err, policy, pass, gen)
  local k = jkey(did)
  local st = job_state(k)
  if not st then return end
  if tonumber(redis.call('HGET', k, 'g:' .. name) or '0') > tonumber(gen or 0) then return end
  if redis.call('HSETNX', k, 'd:' .. name, cjson.encode({state, res or false, err or false})) == 0 then
    return
  end
  if st ~= 'blocked' then return end
  if state ~= 'completed' and policy ~= 'ignore' then
    redis.call('ZREM', BASE .. 'blocked', did)
    -- The cause kept is the original failure (a dependency error hands its own cause
    -- on), so a long chain of failed dependents stores one error each, not nested ones.
    local msg = 'dependency ' .. name .. ' ' .. state
    local cause, origin = false, name
    if err then
      local ok, e = pcall(cjson.decode, err)
      if ok and type(e) == 'table' then
        if (e.type == 'DependencyFailed' or e.type == 'DependencySkipped')
            and type(e.cause) == 'table' then
          origin = tostring(e.origin or e.dependency)
          e = e.cause
        end
        cause = e
        if origin ~= name then msg = msg .. ' (' .. origin .. ' failed first)' end
        msg = msg .. ': ' .. tostring(e.type or 'Error') .. ': ' .. tostring(e.message or '')
      end
    end
    local kind = 'DependencyFailed'
    if policy == 'skip' then kind = 'DependencySkipped' end
    redis.call('RPUSH', has_errors(did, k), cjson.encode({type = kind, message = msg,
      attempt = 0, at = NOW, dependency = name, origin = origin, cause = cause}))
    if policy == 'skip' then
      to_cancelled(did, k)
    else
      redis.call('HSET', k, 'state', 'failed', 'ftime', NOW)
      outbox(did, k, 'failed', redis.call('HGET', k, 'nfy'))
      redis.call('ZADD', K_FAILED, NOW_US, did)
      redis.call('HINCRBY', K_META, 'm:failed', 1)
      history_add('f', '1')
      publish(EVENTS, 'failed ' .. did)
      flow_note(did, k, 'failed')
    end
    return
  end
  if pass == 1 or pass == true then
    local data = redis.call('HGET', k, 'data')
    if string.sub(data, 1, 6) == '[[null' then
      redis.call('HSET', k, 'data', '[[' .. (res or 'null') .. string.sub(data, 7))
    end
  end
  if redis.call('HINCRBY', k, 'fpn', -1) <= 0 then
    redis.call('ZREM', BASE .. 'blocked', did)
    push_waiting(did, k, false)
    wake()
    publish(EVENTS, 'waiting ' .. did)
  end
end

-- Fail fast (a flow started with fail_fast): BASE..'ff:'..<flow id> is a hash of the
-- flow's jobs in this queue (id -> name in the flow), with '!me' = this queue's name,
-- '!q' = JSON array of the other queues holding jobs of the flow, and '!x' once it
-- fired (flow_retry clears it). The failing job's last error is `err` (JSON or false).
local function ff_key(k)
  local fl = redis.call('HGET', k, 'fl')
  if not fl then return false end
  local key = BASE .. 'ff:' .. fl
  if redis.call('EXISTS', key) == 0 then return false end
  return key
end

-- Cancel every unfinished job of the flow in this queue (running ones are asked to
-- stop), each with a 'SiblingFailed' error naming the failed job; then the other
-- queues' members through their handoff (unless `here_only`: a handoff applying it).
-- A member whose keys a slot migration took elsewhere is cancelled through this
-- queue's own handoff instead (see CLUSTER).
local function flow_fail_fast(key, fid, fname, err, here_only)
  local members = redis.call('HGETALL', key)
  local me, others = false, '[]'
  for i = 1, #members, 2 do
    if members[i] == '!me' then me = members[i + 1] end
    if members[i] == '!q' then others = members[i + 1] end
  end
  redis.call('HSET', key, '!x', '1')
  local cause, msg = false, 'job ' .. fname .. ' (' .. fid .. ') of the flow failed'
  if err then
    local ok, e = pcall(cjson.decode, err)
    if ok and type(e) == 'table' then
      cause = e
      msg = msg .. ': ' .. tostring(e.type or 'Error') .. ': ' .. tostring(e.message or '')
    end
  end
  local reason = cjson.encode({type = 'SiblingFailed', message = 'cancelled (fail_fast): ' .. msg,
    attempt = 0, at = NOW, job = fid, name = fname, cause = cause})
  local entry = cjson.encode({me, '', '!ff', string.sub(key, #BASE + 1), fid, fname,
    err or false})
  local later = false
  for i = 1, #members, 2 do
    local mid = members[i]
    if mid ~= '!me' and mid ~= '!q' and mid ~= '!x' and mid ~= fid then
      local mk = jkey(mid)
      if not here_job(mid, mk) then
        later = true
      else
        local st = job_state(mk)
        if st == 'active' then
          if redis.call('HGET', mk, 'cxl') ~= '1' then
            redis.call('HSET', mk, 'cxl', '1')
            redis.call('RPUSH', has_errors(mid, mk), reason)
            publish(CONTROL, 'cancel ' .. mid)
          end
        elseif st == 'waiting' or st == 'delayed' or st == 'blocked' then
          if st == 'waiting' then
            unwait(mid, mk)
          elseif st == 'delayed' then
            redis.call('ZREM', K_DELAYED, mid)
          else
            redis.call('ZREM', BASE .. 'blocked', mid)
          end
          redis.call('RPUSH', has_errors(mid, mk), reason)
          to_cancelled(mid, mk)
        end
      end
    end
  end
  if later and me then redis.call('ZADD', BASE .. 'handoff', NOW_S, entry) end
  if here_only then return end
  for _, q in ipairs(cjson.decode(others)) do
    redis.call('ZADD', BASE .. 'handoff', NOW_S,
      cjson.encode({q, '', '!ff', string.sub(key, #BASE + 1), fid, fname, err or false}))
  end
end

-- A job of this queue ended (state: completed, failed or cancelled): its dependents
-- hear of it in this same script (those of this queue) or through this queue's
-- handoff set (the others; pass_handoffs applies them on their queue). Ending a
-- dependent notes it in turn: a worklist, not recursion, so a long chain ends in one go.
-- A failure fires the flow's fail fast (flow_fail_fast) unless every edge from the
-- failed job is 'ignore'; its dependents are cancelled by it before they hear of it.
flow_note = function(id, k, state)
  local fdn = redis.call('HGET', k, 'fdn')
  local ff = false
  if state == 'failed' then ff = ff_key(k) end
  if not fdn and not ff then return end
  FLOW_Q[#FLOW_Q + 1] = {id, k, state, fdn or '[]', ff}
  if FLOW_BUSY then return end
  FLOW_BUSY = true
  local i = 1
  while i <= #FLOW_Q do
    local jid, jk, st, deps, ffk = unpack(FLOW_Q[i])
    local gen = tonumber(redis.call('HGET', jk, 'fgen') or '0')
    local res, err = false, false
    if st == 'completed' then
      res = redis.call('HGET', jk, 'res') or false
    else
      -- Only a list the job has (a missing key may be on another node, see CLUSTER).
      if redis.call('HEXISTS', jk, 'je') == 1 then
        err = redis.call('LINDEX', BASE .. 'je:' .. jid, -1) or false
      end
    end
    local edges = cjson.decode(deps)
    if ffk and redis.call('HEXISTS', ffk, '!x') == 0 then
      local ignored = #edges > 0
      for _, d in ipairs(edges) do
        if d[5] ~= 'ignore' then ignored = false end
      end
      if not ignored then
        flow_fail_fast(ffk, jid, redis.call('HGET', ffk, jid) or jid, err, false)
      end
    end
    for _, d in ipairs(edges) do
      local queue, base, did, name, policy, pass = unpack(d)
      -- (A dependent whose keys a slot migration took elsewhere hears of it through
      -- the handoff too: see CLUSTER.)
      if base == BASE and here_job(did, jkey(did)) then
        flow_settle(did, name, st, res, err, policy, pass, gen)
      else
        redis.call('ZADD', BASE .. 'handoff', NOW_S, cjson.encode({queue, did, name, st, res,
          err, policy, pass, jid, gen}))
      end
    end
    i = i + 1
  end
  FLOW_Q, FLOW_BUSY = {}, false
end
