-- Store new jobs as waiting or delayed; a job id that exists is left untouched.
-- KEYS: common.  ARGV[1]: base, ARGV[2]: a JSON array of job rows (see add_job)
-- Returns: per job, 1 = created, else the id of the job that stands for it; then 1 when
--   the queue is new or was forgotten (the caller adds it to the queue registry), else 0;
--   then the Redis clock in ms (the created jobs' ctime).
--@include common
--@include add_job
-- One JSON argument instead of 8 per job: cheaper to pack in Python and to parse here.
local rows = cjson.decode(ARGV[2])
touch_rows(rows)
local out = {}
local any = false
start_adding(#rows)
for i = 1, #rows do
  local flag = add_job(rows[i])
  out[i] = flag
  if flag == 1 then any = true end
end
if any then wake() end
publish_added()
out[#rows + 1] = redis.call('HSETNX', K_META, 'reg', '1')
out[#rows + 2] = NOW
return out
