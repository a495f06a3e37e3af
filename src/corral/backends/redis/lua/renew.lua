-- Extend the leases of jobs a worker still holds.
-- KEYS: common.  ARGV: 1 base, 2 lease_ms, then pairs: id, token
-- Returns: {lost ids, ids whose cancellation was requested}
--@include common
local deadline = NOW + tonumber(ARGV[2])
local lost, cancel = {}, {}
if CLUSTER and #ARGV > 2 then
  local keys = {}
  for i = 3, #ARGV, 2 do keys[#keys + 1] = jkey(ARGV[i]) end
  touch_all(keys)
end
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local f = redis.call('HMGET', jkey(id), 'tok', 'cxl')
  if f[1] == ARGV[i + 1] then
    redis.call('ZADD', K_ACTIVE, 'XX', deadline, id)
    if f[2] == '1' then cancel[#cancel + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
return {lost, cancel}
