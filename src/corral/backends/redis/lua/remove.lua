-- Delete a job that is not active.
-- KEYS: common.  ARGV: 1 base, 2 id
-- Returns: 1 removed, 0 missing, -1 active (refused).
--@include common
local id = ARGV[2]
touch(jkey(id))
local state = job_state(jkey(id))
if not state then return 0 end
if state == 'active' then return -1 end
touch_removal(id, jkey(id))
if state == 'waiting' then unwait(id, jkey(id)) else redis.call('ZREM', BASE .. state, id) end
-- An unfinished job of a flow: its dependents hear of it as of a cancellation.
if state ~= 'completed' and state ~= 'failed' and state ~= 'cancelled' then
  flow_note(id, jkey(id), 'cancelled')
end
delete_job(id)
publish(EVENTS, 'removed ' .. id)
return 1
