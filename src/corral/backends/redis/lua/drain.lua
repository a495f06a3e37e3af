-- Delete up to 5000 waiting jobs (and delayed ones when asked); call until it returns 0.
-- KEYS: common.  ARGV: 1 base, 2 include delayed (1/0)
-- Returns: how many were deleted.
--@include common
local n = 0
while n < 5000 do
  local ids = redis.call('LRANGE', K_FIFO, 0, math.min(999, 4999 - n))
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    flow_note(id, jkey(id), 'cancelled')  -- a flow's dependents hear of it
    delete_job(id)
  end
  redis.call('LTRIM', K_FIFO, #ids, -1)
  n = n + #ids
end
local sets = {K_WAIT, GW}
if ARGV[2] == '1' then sets[3] = K_DELAYED end
for _, set_key in ipairs(sets) do
  while n < 5000 do
    local ids = redis.call('ZRANGE', set_key, 0, math.min(999, 4999 - n))
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      if set_key == GW then unwait(id, jkey(id)) end
      flow_note(id, jkey(id), 'cancelled')
      delete_job(id)
    end
    if set_key ~= GW then redis.call('ZREM', set_key, unpack(ids)) end
    n = n + #ids
  end
end
return n
