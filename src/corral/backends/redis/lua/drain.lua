-- Delete up to 5000 waiting jobs (and delayed ones when asked); call until it returns 0.
-- KEYS: common.  ARGV: 1 base, 2 include delayed (1/0)
-- Returns: how many were deleted.
--@include common
local n = 0
while n < 5000 do
  local ids = redis.call('LRANGE', K_FIFO, 0, math.min(999, 4999 - n))
  if #ids == 0 then break end
  local done = 0
  for _, id in ipairs(ids) do
    if not here_removal(id, jkey(id)) then break end
    flow_note(id, jkey(id), 'cancelled')  -- a flow's dependents hear of it
    delete_job(id)
    done = done + 1
  end
  if done > 0 then redis.call('LTRIM', K_FIFO, done, -1) end
  n = n + done
  -- Stopped by a slot migration (see CLUSTER): what was deleted stays so, try again.
  if done < #ids then
    touch_removal(ids[done + 1], jkey(ids[done + 1]))
    break
  end
end
local sets = {K_WAIT, GW}
if ARGV[2] == '1' then sets[3] = K_DELAYED end
for _, set_key in ipairs(sets) do
  while n < 5000 do
    local ids = redis.call('ZRANGE', set_key, 0, math.min(999, 4999 - n))
    if #ids == 0 then break end
    for i, id in ipairs(ids) do
      if not here_removal(id, jkey(id)) then
        if set_key ~= GW and i > 1 then redis.call('ZREM', set_key, unpack(ids, 1, i - 1)) end
        touch_removal(id, jkey(id))  -- stopped by a slot migration: try again
      end
      if set_key == GW then unwait(id, jkey(id)) end
      flow_note(id, jkey(id), 'cancelled')
      delete_job(id)
      n = n + 1
    end
    if set_key ~= GW then redis.call('ZREM', set_key, unpack(ids)) end
  end
end
return n
