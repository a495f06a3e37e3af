-- Apply outcomes handed off from other queues to dependents in this queue (see
-- flow_note in common); idempotent, so a handoff applied twice changes nothing.
-- KEYS: common.  ARGV: 1 base, then JSON arrays [queue, dependent id, edge name, state,
--   result or false, last error or false, policy, pass, dependency id, its generation]
-- Returns: how many entries were read.
--@include common
if CLUSTER then  -- every key it may write, before the first write (see CLUSTER)
  for i = 2, #ARGV do
    local did = cjson.decode(ARGV[i])[2]
    touch_job(did, jkey(did), true)
  end
end
for i = 2, #ARGV do
  local h = cjson.decode(ARGV[i])
  flow_settle(h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[10])
end
return #ARGV - 1
