-- Shared by every queue script: inlined ahead of a script's body where it says
-- "--@include common" (EVAL), or defined once in the function library (Redis >= 7),
-- so nothing here may hold state from one call to the next except through begin(),
-- and caches of what depends on the arguments alone (NAMES, INT_TEXT).
-- KEYS (same order in every queue script):
--   1 wait  2 active  3 delayed  4 completed  5 failed  6 cancelled  7 meta  8 marker
-- ARGV[1]: "<db> <key base>": the database number, a space, then the queue's key base
--   "{prefix}:{queue}:" (job keys hang off it). Pub/sub is server-wide, not per database,
--   so the channels carry the database: "{prefix}:{queue}:<db>:events" (see keys.py).
-- Invariant kept by every script: a job hash has a "tok" field exactly while it is active.
local K_WAIT, K_ACTIVE, K_DELAYED, K_COMPLETED, K_FAILED, K_CANCELLED, K_META, K_MARKER
-- NOW: the Redis clock in ms; NOW_S the same as text. Numbers passed to redis.call are
-- formatted with printf on every call (several thousand instructions each), so the
-- hot paths pass text, and literal numbers as strings.
local BASE, EVENTS, CONTROL, NOW, NOW_S, NOW_US
-- PUBLISH, or on Redis Cluster SPUBLISH: a message stays on the shard of its queue.
local PUB
-- Groups (tenants). Ungrouped waiting jobs are in K_WAIT; a group's waiting jobs in
-- G_PREFIX..group, and every grouped waiting job also in GW (for counts and lists).
-- Groups with waiting jobs take turns in GROUPS (score = turn, from meta 'turn');
-- one held by its concurrency cap waits in GCAPPED, one held by its rate limit in
-- GPARKED (score = ms when it may start again). GACTIVE counts running jobs per group.
local G_PREFIX, GW, GROUPS, GACTIVE, GCAPPED, GPARKED
-- Ungrouped jobs of the default priority wait in the list K_FIFO (see add_waiting).
local K_FIFO
local SEQ_NEXT, SEQ_END, SEQ_BATCH
-- Flows: jobs of this queue that ended with dependents still to hear of it (flow_note).
local FLOW_Q, FLOW_BUSY
-- Redis Cluster (sharded pub/sub). While a slot migrates, each of its keys is on one
-- node or the other, and Redis stops a script at the first key that is not on the node
-- running it, keeping the writes it made before (no rollback): a claim that popped an
-- id and was then stopped at the job's hash would lose the job. So on a cluster a
-- script reads every key it may write before its first write: the queue's own keys
-- in begin(), a job's keys with touch_job() or here(). A stopped script then changed
-- nothing and is tried again (backend.py); one that can do part of its work (claim,
-- retention) stops early instead, at a key here() says is elsewhere.
local CLUSTER

-- History keys (see history_add) of this call's minute and quarter hour.
local function history_keys()
  local minute = math.floor(NOW / 60000)
  local quarter = math.floor(minute / 15)
  local hour, day = math.floor(minute / 60), math.floor(quarter / 96)
  return minute, quarter, hour, day, BASE .. string.format('hm:%d', hour),
    BASE .. string.format('hq:%d', day)
end

-- What begin() derives from ARGV[1], per "<db> <key base>": with FCALL the library's
-- locals outlive a call, so each queue's names are built once (under EVAL, once per
-- call as before). Pure functions of ARGV[1], so no state leaks between calls; the
-- table is emptied if a Redis with very many queues fills it.
local NAMES, NAMES_N = {}, 0

local function names_of(argv1)
  -- argv1 is "<db> <key base>"; "<db>s" asks for sharded pub/sub.
  local cut = string.find(argv1, ' ', 1, true)
  local base = string.sub(argv1, cut + 1)
  local db = string.sub(argv1, 1, cut - 1)
  local pub = 'PUBLISH'
  if string.sub(db, -1) == 's' then
    pub, db = 'SPUBLISH', string.sub(db, 1, -2)
  end
  local channels = base .. db .. ':'
  return {base, pub, channels .. 'events', channels .. 'control', base .. 'fifo',
    base .. 'g:', base .. 'gw', base .. 'groups', base .. 'gactive', base .. 'gcapped',
    base .. 'gparked'}
end

-- A whole number as text ('%d'): a number passed to redis.call or joined with '..' is
-- formatted with '%.17g' or '%.14g', several times the cost. Small ones are kept.
local INT_TEXT = {}

local function int_text(n)
  local s = INT_TEXT[n]
  if not s then
    s = string.format('%d', n)
    if n >= 0 and n <= 1000 then INT_TEXT[n] = s end
  end
  return s
end

-- Every script body starts here: this call's keys, key base and Redis clock.
local function begin(keys, argv)
  K_WAIT, K_ACTIVE, K_DELAYED = keys[1], keys[2], keys[3]
  K_COMPLETED, K_FAILED, K_CANCELLED = keys[4], keys[5], keys[6]
  K_META, K_MARKER = keys[7], keys[8]
  local n = NAMES[argv[1]]
  if not n then
    if NAMES_N >= 1000 then NAMES, NAMES_N = {}, 0 end
    n = names_of(argv[1])
    NAMES[argv[1]], NAMES_N = n, NAMES_N + 1
  end
  BASE, PUB, EVENTS, CONTROL, K_FIFO = n[1], n[2], n[3], n[4], n[5]
  G_PREFIX, GW, GROUPS, GACTIVE, GCAPPED, GPARKED = n[6], n[7], n[8], n[9], n[10], n[11]
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  NOW_S = t[1] .. string.sub(string.rep('0', 6 - #t[2]) .. t[2], 1, 3)
  -- Finished sets are scored in microseconds so "keep the last N" is exact across calls.
  NOW_US = tonumber(t[1]) * 1000000 + tonumber(t[2])
  SEQ_NEXT, SEQ_END, SEQ_BATCH = 0, -1, 1
  FLOW_Q, FLOW_BUSY = {}, false
  CLUSTER = PUB == 'SPUBLISH'
  if CLUSTER then
    local _, _, _, _, hm, hq = history_keys()
    redis.call('EXISTS', K_META, K_FIFO, GW, GROUPS, GACTIVE, GCAPPED, GPARKED,
      BASE .. 'outbox', BASE .. 'rate', BASE .. 'sched', BASE .. 'sched:next',
      BASE .. 'sched:last', BASE .. 'wk', hm, hq)
  end
end

-- Stop the script unless every key is on this node (see CLUSTER); call before the
-- first write, and before reading a key that is neither declared nor in begin().
-- Always with K_META (which is on this node: the script runs): on the node importing
-- a slot, a command on one key that is still on the other node reads it as missing,
-- while a command on several keys, one missing, answers TRYAGAIN.
local function touch(...)
  if CLUSTER then redis.call('EXISTS', K_META, ...) end
end

-- Whether every key is on this node (always, off a cluster), as touch() but never
-- stopping the script.
local function here(...)
  return not CLUSTER or type(redis.pcall('EXISTS', K_META, ...)) == 'number'
end

-- touch() and here() for a list of any length (unpack() has a stack limit).
local function touch_all(keys)
  for i = 1, #keys, 1000 do touch(unpack(keys, i, math.min(i + 999, #keys))) end
end

local function here_all(keys)
  for i = 1, #keys, 1000 do
    if not here(unpack(keys, i, math.min(i + 999, #keys))) then return false end
  end
  return true
end

local function publish(channel, message)
  redis.call(PUB, channel, message)
end

-- A job's keys: its hash 'j:', error list 'je:' and log list 'jl:' + its id. Each kind has
-- a prefix no other key of the queue starts with, so no id (ids may hold ':') names
-- another job's key. keys.py builds the same names.
local function jkey(id)
  return BASE .. 'j:' .. id
end

-- A job's state, false when there is no such job. A job added waiting stores no 'state'
-- (memory per waiting job is what a backlog costs; add_job): a hash with a 'name' and
-- no 'state' is waiting. Every other state, and waiting again after a claim, is stored.
local function job_state(k)
  local f = redis.call('HMGET', k, 'state', 'name')
  if f[1] then return f[1] end
  if f[2] then return 'waiting' end
  return false
end

-- Tell one blocked worker there may be work (the marker holds at most one member).
local function wake()
  redis.call('ZADD', K_MARKER, '0', '0')
end

-- A job's error and log lists exist only once its hash says so ('je', 'jl'), so
-- deleting a job looks up only keys it has: in a big keyspace every lookup, even of a
-- missing key, is a cache miss.
local function has_errors(id, k)
  redis.call('HSET', k, 'je', '1')
  return BASE .. 'je:' .. id
end

local function has_logs(id, k)
  redis.call('HSET', k, 'jl', '1')
  return BASE .. 'jl:' .. id
end

-- Lists written before the 'je:'/'jl:' layout ('xe'/'xl' in the hash) were named
-- <job key>..':err'/':log'; such a name may be another job's hash, never deleted here.
local function drop_old_list(key)
  if redis.call('TYPE', key).ok == 'list' then redis.call('DEL', key) end
end

-- (cluster) The keys a job's end may write in its flow (see flow_note): the hash,
-- error list and group line of each dependent in this queue, and of theirs (a
-- dependent may end in turn). Read-only; only the hashes already known to be here
-- are read (their keys are checked first by the caller's touch()/here()).
local function flow_keys(fdn, check)
  local keys, seen, todo = {}, {}, {fdn}
  local i = 1
  while i <= #todo do
    for _, d in ipairs(cjson.decode(todo[i])) do
      local did = d[3]
      if d[2] == BASE and not seen[did] then
        seen[did] = true
        local dk = jkey(did)
        if not check(dk) then return keys, false end
        keys[#keys + 1] = dk
        keys[#keys + 1] = BASE .. 'je:' .. did
        local f = redis.call('HMGET', dk, 'grp', 'fdn', 'fl')
        if f[1] then keys[#keys + 1] = G_PREFIX .. f[1] end
        if f[2] then todo[#todo + 1] = f[2] end
        if f[3] then keys[#keys + 1] = BASE .. 'ff:' .. f[3] end
      end
    end
    i = i + 1
  end
  return keys, true
end

-- (cluster) Stop the script unless the keys of job `id` its caller may write are on
-- this node: its hash, its group's line, (`errors`, or when it has one) its error
-- list, and its flow dependents' keys (flow_keys). Call before the first write.
local function touch_job(id, k, errors)
  if not CLUSTER then return end
  touch(k)
  local f = redis.call('HMGET', k, 'grp', 'je', 'fdn', 'fl')
  local keys = {}
  if f[1] then keys[1] = G_PREFIX .. f[1] end
  if errors or f[2] then keys[#keys + 1] = BASE .. 'je:' .. id end
  -- A job of a flow: the queue's blocked and handoff sets (not in begin(): a queue
  -- without flows has neither).
  if f[3] or f[4] then
    keys[#keys + 1] = BASE .. 'blocked'
    keys[#keys + 1] = BASE .. 'handoff'
  end
  if f[4] then keys[#keys + 1] = BASE .. 'ff:' .. f[4] end
  if #keys > 0 then touch(unpack(keys)) end
  if f[3] then
    local function check(key) touch(key); return true end
    touch_all((flow_keys(f[3], check)))
  end
end

-- Whether the keys of job `id` that touch_job(id, k, true) touches are all on this node.
local function here_job(id, k)
  if not CLUSTER then return true end
  if not here(k) then return false end
  local g = redis.call('HGET', k, 'grp')
  if g then return here(BASE .. 'je:' .. id, G_PREFIX .. g) end
  return here(BASE .. 'je:' .. id)
end

-- The keys delete_job deletes (its hash first), and the hash's fields that name them
-- (then its group and flow dependents, for here_removal). A job of a flow ('fl') also
-- writes the queue's 'fgone' set: flows that lost a job, whose record the workers
-- delete once every job of it is gone (Backend.prune_flows).
local function job_keys(id, k)
  local f = redis.call('HMGET', k, 'ddk', 'je', 'jl', 'xe', 'xl', 'grp', 'fdn', 'fl')
  local keys = {k}
  if f[1] then keys[#keys + 1] = BASE .. 'dd:' .. f[1] end
  if f[2] then keys[#keys + 1] = BASE .. 'je:' .. id end
  if f[3] then keys[#keys + 1] = BASE .. 'jl:' .. id end
  if f[4] then keys[#keys + 1] = k .. ':err' end
  if f[5] then keys[#keys + 1] = k .. ':log' end
  if f[8] then keys[#keys + 1] = BASE .. 'fgone' end
  return keys, f
end

-- (cluster) Stop the script unless every key of job `id` that removing it writes is
-- on this node. Call before the first write.
local function touch_removal(id, k)
  if not CLUSTER then return end
  touch_job(id, k)
  touch(unpack((job_keys(id, k))))
end

-- Whether removing job `id` writes only keys on this node (see touch_removal).
local function here_removal(id, k)
  if not CLUSTER then return true end
  if not here(k) then return false end
  local keys, f = job_keys(id, k)
  if f[6] then keys[#keys + 1] = G_PREFIX .. f[6] end
  if not here(unpack(keys)) then return false end
  local fdn = f[7]
  if not fdn then return true end
  local flow, all = flow_keys(fdn, here)
  flow[#flow + 1] = BASE .. 'blocked'
  flow[#flow + 1] = BASE .. 'handoff'
  return all and here_all(flow)
end

-- A job's dedupe key (see add_job) goes with it, unless a newer job took it over.
-- Returns false, having deleted nothing, when a key of the job is on another node.
local function delete_job(id)
  local k = jkey(id)
  if not here(k) then return false end
  local keys, f = job_keys(id, k)
  if CLUSTER and not here(unpack(keys)) then return false end
  local dk = f[1] and BASE .. 'dd:' .. f[1]
  if dk and redis.call('GET', dk) == id then
    redis.call('DEL', dk)
  end
  if f[2] then redis.call('DEL', BASE .. 'je:' .. id) end
  if f[3] then redis.call('DEL', BASE .. 'jl:' .. id) end
  if f[4] then drop_old_list(k .. ':err') end
  if f[5] then drop_old_list(k .. ':log') end
  redis.call('DEL', k)
  if f[8] then redis.call('SADD', BASE .. 'fgone', f[8]) end
  return true
end

-- Delete jobs in order while their keys are on this node; returns how many.
local function delete_jobs(ids)
  for i, id in ipairs(ids) do
    if not delete_job(id) then return i - 1 end
  end
  return #ids
end

local function next_turn()
  return redis.call('HINCRBY', K_META, 'turn', 1)
end

-- Put a group with waiting jobs at the back of the line, unless a limit holds it.
local function line_up(g)
  if redis.call('ZSCORE', GROUPS, g) or redis.call('ZSCORE', GPARKED, g)
      or redis.call('SISMEMBER', GCAPPED, g) == 1 then
    return
  end
  redis.call('ZADD', GROUPS, next_turn(), g)
end

-- Waiting order: higher priority first; within a priority, the order jobs joined.
-- Ungrouped jobs of the default priority 0 wait in the list K_FIFO (about 35 bytes a
-- job, against about 140 in a sorted set: a backlog is mostly these). Every other
-- waiting job is in a sorted set scored ws = (1000 - priority) * BAND + HALF + seq,
-- and keeps its ws in its hash (so does a delayed job, to keep its place among jobs
-- due in the same millisecond). HALF leaves room below a priority's first seq for jobs
-- sent back to the front of their priority.
local BAND, HALF = 4398046511104, 2199023255552

-- Sequence numbers are reserved when first needed (a plain job needs none), then
-- SEQ_BATCH at once: one HINCRBY for a batch.
local function next_seq()
  if SEQ_NEXT > SEQ_END then
    SEQ_END = redis.call('HINCRBY', K_META, 'seq', SEQ_BATCH)
    SEQ_NEXT = SEQ_END - SEQ_BATCH + 1
    SEQ_BATCH = 1
  end
  SEQ_NEXT = SEQ_NEXT + 1
  return SEQ_NEXT - 1
end

local function ws_of(prio, seq)
  return (1000 - prio) * BAND + HALF + seq
end

-- Scores pass to Redis as text: a Lua number would be formatted with 14 digits.
local function score(n)
  return string.format('%.0f', n)
end

local function in_fifo(ws, g)
  return not g and (not ws or math.floor(ws / BAND) == 1000)
end

-- Put a job in its sorted set(s) at score s (text).
local function enter_sorted(id, s, g)
  redis.call('ZADD', g and (G_PREFIX .. g) or K_WAIT, s, id)
  if g then
    redis.call('ZADD', GW, s, id)
    line_up(g)
  end
end

-- Put a job in line as the last of its priority, or (front) the first.
local function add_waiting(id, k, ws, g, front)
  if in_fifo(ws, g) then
    if ws then redis.call('HDEL', k, 'ws') end
    if front then redis.call('LPUSH', K_FIFO, id) else redis.call('RPUSH', K_FIFO, id) end
    return
  end
  local set = g and (G_PREFIX .. g) or K_WAIT
  local base = math.floor(ws / BAND) * BAND
  if front then
    local head = redis.call('ZRANGEBYSCORE', set, score(base), '(' .. score(base + BAND),
      'LIMIT', 0, 1, 'WITHSCORES')
    if head[2] and tonumber(head[2]) <= ws then ws = tonumber(head[2]) - 1 end
  else
    ws = base + HALF + next_seq()
  end
  local s = score(ws)
  redis.call('HSET', k, 'ws', s)
  enter_sorted(id, s, g)
end

-- A job that was delayed, running or finished waits again: at the back of its
-- priority, or at the front when a worker hands it back (shutdown, lease expired).
-- f: its {ws, grp} fields when the caller has read them already.
local function push_waiting(id, k, front, f)
  f = f or redis.call('HMGET', k, 'ws', 'grp')
  add_waiting(id, k, tonumber(f[1]), f[2], front)
  redis.call('HSET', k, 'state', 'waiting')
end

-- Take a waiting job out of line (cancel, remove, drain, debounce).
local function unwait(id, k)
  local f = redis.call('HMGET', k, 'grp', 'ws')
  local g = f[1]
  if g then
    local gk = G_PREFIX .. g
    redis.call('ZREM', gk, id)
    redis.call('ZREM', GW, id)
    if redis.call('EXISTS', gk) == 0 then redis.call('ZREM', GROUPS, g) end
  elseif f[2] then
    redis.call('ZREM', K_WAIT, id)
  else
    redis.call('LREM', K_FIFO, 1, id)
  end
end

-- A grouped job stopped running: free its group's slot; a group its cap held goes
-- back in line and a blocked worker is told.
local function group_left(g)
  if not g then return end
  if redis.call('HINCRBY', GACTIVE, g, -1) <= 0 then redis.call('HDEL', GACTIVE, g) end
  if redis.call('SREM', GCAPPED, g) == 1 and redis.call('EXISTS', G_PREFIX .. g) == 1 then
    line_up(g)
    wake()
  end
end

-- Keep at most `count` newest members of a finished set, none older than `max_age`
-- (ms; the sets are scored in us); -1 means no limit. Bounded per call so one script never blocks Redis long.
local function retain(set_key, count, max_age)
  if max_age >= 0 then
    local old = redis.call('ZRANGEBYSCORE', set_key, '-inf', NOW_US - max_age * 1000,
      'LIMIT', 0, 1000)
    if #old > 0 then
      local n = delete_jobs(old)
      if n > 0 then redis.call('ZREMRANGEBYRANK', set_key, 0, n - 1) end
      if n < #old then return end
    end
  end
  if count >= 0 then
    local excess = redis.call('ZCARD', set_key) - count
    if excess > 0 then
      if excess > 1000 then excess = 1000 end
      local n = delete_jobs(redis.call('ZRANGE', set_key, 0, excess - 1))
      if n > 0 then redis.call('ZREMRANGEBYRANK', set_key, 0, n - 1) end
    end
  end
end

-- An active job finished: with a concurrency cap, a worker blocked on the cap may
-- now claim, so wake one.
local function finished()
  if redis.call('HEXISTS', K_META, 'max_active') == 1 then wake() end
end

-- Processing-time histogram in the meta hash (bounds in ms, as DURATION_BUCKETS in
-- backends/base.py): m:b<i> counts runs in bucket i, m:sum their seconds.
local BUCKETS = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
  300000, 900000, 3600000}

local function bucket_of(ms)
  for i, bound in ipairs(BUCKETS) do
    if ms <= bound then return i end
  end
  return #BUCKETS + 1
end

-- Outcome history (keys.py: hm:, hq:): n outcomes of `kind` ('f' = failed for good, or
-- a duration bucket '0'..'16' as in DURATION_BUCKETS, see KINDS) in this minute's and
-- this quarter hour's slots. A key gets its expiry when one of its fields is new (so
-- when the key is): minutes stay an hour past their hour, quarter hours a day past their
-- day. Names are built with '%d': a number concatenated as is goes through '%.14g',
-- which cost this function more than its two HINCRBYs. n: a count (number or text).
local KINDS = {'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14',
  '15', '16'}

local function history_add(kind, n)
  local minute, quarter, hour, day, hm, hq = history_keys()
  local first = tonumber(n)
  if redis.call('HINCRBY', hm, string.format('%d:', minute) .. kind, n) == first then
    redis.call('EXPIREAT', hm, string.format('%d', (hour + 2) * 3600))
  end
  if redis.call('HINCRBY', hq, string.format('%d:', quarter) .. kind, n) == first then
    redis.call('EXPIREAT', hq, string.format('%d', (day + 2) * 86400))
  end
end

-- Notifications (issue 17): a job enqueued with some ('nfy': the outcomes wanted,
-- comma-separated) gets an entry in its queue's outbox in the same script that ends
-- it, so no crash between the end and the delivery can lose it. The entry is the
-- outcome as recorded (retention may remove the job before it is delivered): a JSON
-- array [id, event, name, att, ctime, stime, ftime, res, last error, opts, n] (n: a
-- sequence, so two outcomes alike to the ms stay two entries); workers
-- turn entries into delivery jobs (notify/relay.py). Score: when it may next be taken.
-- The outcomes a job notifies: those stored at its enqueue ('nfy') and those its worker
-- knows of (its task's targets, passed with the outcome); false when none.
local function merged(nfy, extra)
  if not extra or extra == '' then return nfy end
  if nfy then return nfy .. ',' .. extra end
  return extra
end

local function outbox(id, k, event, nfy)
  if not nfy or not string.find(',' .. nfy .. ',', ',' .. event .. ',', 1, true) then return end
  local f = redis.call('HMGET', k, 'name', 'att', 'ctime', 'stime', 'ftime', 'res', 'opts', 'je')
  local err = false
  -- Only a list the job has (a missing key may be on another node, see CLUSTER).
  if event ~= 'completed' and f[8] then err = redis.call('LINDEX', BASE .. 'je:' .. id, -1) end
  redis.call('ZADD', BASE .. 'outbox', NOW_S,
    cjson.encode({id, event, f[1], f[2], f[3], f[4], f[5], f[6], err, f[7],
      redis.call('HINCRBY', K_META, 'obx', 1)}))
end

-- Defined with the flow functions below; every path that ends a job calls it.
local flow_note

-- End a job cancelled; the caller has already taken it out of its previous set.
local function to_cancelled(id, k, extra)
  redis.call('HDEL', k, 'tok', 'cxl')
  redis.call('HSET', k, 'state', 'cancelled', 'ftime', NOW)
  outbox(id, k, 'cancelled', merged(redis.call('HGET', k, 'nfy'), extra))
  redis.call('ZADD', K_CANCELLED, NOW_US, id)
  publish(EVENTS, 'cancelled ' .. id)
  flow_note(id, k, 'cancelled')
end
