-- Store one new job as waiting or delayed (needs "common" first). Returns 1 when
-- created, 0 when a job with that id exists (left untouched).
local function add_job(id, name, data, prio, delay, at, opts)
  local k = jkey(id)
  if redis.call('EXISTS', k) == 1 then return 0 end
  prio = tonumber(prio)
  local seq = redis.call('HINCRBY', K_META, 'seq', 1)
  -- Higher priority sorts first; the sequence keeps FIFO within a priority.
  local ws = string.format('%.0f', (1000 - prio) * 4398046511104 + seq)
  delay, at = tonumber(delay), tonumber(at)
  local run_at = 0
  if at > 0 then run_at = at elseif delay > 0 then run_at = NOW + delay end
  redis.call('HSET', k, 'name', name, 'data', data, 'prio', prio, 'ws', ws, 'ctime', NOW, 'att', 0)
  if opts ~= '' then redis.call('HSET', k, 'opts', opts) end
  if run_at > NOW then
    redis.call('HSET', k, 'state', 'delayed', 'rtime', run_at)
    redis.call('ZADD', K_DELAYED, run_at, id)
  else
    redis.call('HSET', k, 'state', 'waiting')
    redis.call('ZADD', K_WAIT, ws, id)
  end
  redis.call('PUBLISH', EVENTS, 'added ' .. id)
  return 1
end
