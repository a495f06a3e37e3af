-- Apply outcomes handed off from other queues to dependents in this queue (see
-- flow_note in common); idempotent, so a handoff applied twice changes nothing.
-- KEYS: common.  ARGV: 1 base, then JSON arrays [queue, dependent id, edge name, state,
--   result or false, last error or false, policy, pass, dependency id, its generation],
--   or [queue, '', '!ff', 'ff:<flow id>', failed job id, its name, its last error or
--   false]: a flow's fail fast (flow_fail_fast), applied first.
-- Returns: how many entries were read.
--@include common
local entries = {}
for i = 2, #ARGV do entries[i - 1] = cjson.decode(ARGV[i]) end
if CLUSTER then  -- every key it may write, before the first write (see CLUSTER)
  for _, h in ipairs(entries) do
    if h[3] == '!ff' then
      touch(BASE .. h[4], BASE .. 'handoff', BASE .. 'blocked')
    else
      touch_job(h[2], jkey(h[2]), true)
    end
  end
end
for _, h in ipairs(entries) do
  if h[3] == '!ff' and redis.call('EXISTS', BASE .. h[4]) == 1 then
    FLOW_BUSY = true  -- the cancelled jobs' dependents hear of it after (flow_note)
    flow_fail_fast(BASE .. h[4], h[5], h[6], h[7], true)
    FLOW_BUSY = false
    local q = FLOW_Q
    FLOW_Q = {}
    for _, item in ipairs(q) do flow_note(item[1], item[2], item[3]) end
  end
end
for _, h in ipairs(entries) do
  if h[3] ~= '!ff' then flow_settle(h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[10]) end
end
return #ARGV - 1
