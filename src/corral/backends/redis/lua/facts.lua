-- Read (never write) what keeps a job from starting: its state, the queue's pause and
-- limits with their current use, its group's, the live workers of the queue and the
-- number of jobs that would be claimed before it.
-- KEYS: common.  ARGV: 1 base, 2 job id, 3 bound (the place in line is counted up to
--   this many jobs: LPOS is linear, and a read must not hold Redis up)
-- Returns: {} when the job is missing, else
--   {state, run_at|'', attempts, group|'', paused 0/1,
--    active, max_active|'', rate_max|'', rate_ms|'', rate_count, rate_oldest|'',
--    group_active, gmax|'', grate|'', grate_ms|'', group_count, group_oldest|'',
--    live workers, position (-1: not waiting), now, 1 if position is the bound (more)}
--@include common
local id = ARGV[2]
local k = jkey(id)
local f = redis.call('HMGET', k, 'state', 'rtime', 'att', 'grp', 'ws', 'name')
if not f[1] and not f[6] then return {} end
local state, g = f[1] or 'waiting', f[4]
local meta = redis.call('HMGET', K_META, 'paused', 'max_active', 'rate_max', 'rate_ms',
  'gmax', 'grate', 'grate_ms', 'uturn')

-- Starts in a sliding window (see claim.lua): how many, and the oldest one's time.
local function window(key, ms)
  if not ms then return 0, '' end
  local from = '(' .. score(NOW - tonumber(ms))
  local n = redis.call('ZCOUNT', key, from, '+inf')
  if n == 0 then return 0, '' end
  return n, redis.call('ZRANGEBYSCORE', key, from, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)[2]
end

local rate_count, rate_oldest = 0, ''
if meta[3] then rate_count, rate_oldest = window(BASE .. 'rate', meta[4]) end
local gactive, gcount, goldest = 0, 0, ''
if g then
  gactive = tonumber(redis.call('HGET', GACTIVE, g) or '0')
  if meta[6] then gcount, goldest = window(BASE .. 'grate:' .. g, meta[7]) end
end
local workers = redis.call('ZCOUNT', BASE .. 'wk', '(' .. NOW_S, '+inf')

local bound = tonumber(ARGV[3])
local capped = 0

-- Jobs ahead of it in its own line (its group, or the ungrouped jobs: higher priority,
-- then the priority-0 list, then lower priority; see claim.lua's pop_ungrouped).
local function own_rank()
  if g then return redis.call('ZRANK', G_PREFIX .. g, id) end
  local ws = tonumber(f[5])
  local top = score(1000 * BAND)
  if not ws then
    local at = redis.call('LPOS', K_FIFO, id, 'MAXLEN', bound)
    if not at then
      if redis.call('LLEN', K_FIFO) <= bound then return nil end
      capped, at = 1, bound
    end
    return redis.call('ZCOUNT', K_WAIT, '-inf', '(' .. top) + at
  end
  local rank = redis.call('ZRANK', K_WAIT, id)
  if not rank then return nil end
  if ws >= 1000 * BAND then rank = rank + redis.call('LLEN', K_FIFO) end
  return rank
end

-- A group its limits hold now is skipped by the next claim (which takes it out of line).
local function held(grp)
  if meta[5] and tonumber(redis.call('HGET', GACTIVE, grp) or '0') >= tonumber(meta[5]) then
    return true
  end
  return meta[6] and window(BASE .. 'grate:' .. grp, meta[7]) >= tonumber(meta[6])
end

local position = -1
if state == 'waiting' then
  local rank = own_rank()
  if rank then
    position = rank
    if redis.call('EXISTS', GW) == 1 then
      -- Lines take turns, one job a turn, lowest turn first (ungrouped first on a tie):
      -- each other line in rotation gives up to rank jobs ahead of it (one more when its
      -- turn comes first). Groups held by a limit are out of the rotation meanwhile.
      local ungrouped = redis.call('ZCARD', K_WAIT) + redis.call('LLEN', K_FIFO)
      local uturn = tonumber(meta[8] or '0')
      local mine = uturn
      if g then
        mine = tonumber(redis.call('ZSCORE', GROUPS, g) or '1e300')
        if held(g) then mine = 1e300 end
      end
      if g and ungrouped > 0 then
        local first = 0
        if uturn <= mine then first = 1 end
        position = position + math.min(ungrouped, rank + first)
      end
      local line = redis.call('ZRANGE', GROUPS, 0, 999, 'WITHSCORES')
      for i = 1, #line, 2 do
        if line[i] ~= g and not held(line[i]) then
          local first = 0
          if tonumber(line[i + 1]) < mine then first = 1 end
          position = position + math.min(redis.call('ZCARD', G_PREFIX .. line[i]), rank + first)
        end
      end
    end
  end
end

if position >= bound then position, capped = bound, 1 end

return {state, f[2] or '', f[3] or '0', g or '', meta[1] == '1' and 1 or 0,
  redis.call('ZCARD', K_ACTIVE), meta[2] or '', meta[3] or '', meta[4] or '', rate_count,
  rate_oldest, gactive, meta[5] or '', meta[6] or '', meta[7] or '', gcount, goldest,
  workers, position, NOW, capped}
