-- Store new jobs as waiting or delayed; a job id that exists is left untouched.
-- KEYS: common.  ARGV[1]: base; then 8 fields per job: id, name, data (JSON),
--   priority (-1000..1000), delay_ms, run_at_ms (0 = unset), options (JSON or ""),
--   ext (JSON or "": group, dedupe and debounce, see add_job)
-- Returns: per job, 1 = created, else the id of the job that stands for it.
--@include common
--@include add_job
local out = {}
local any = false
reserve_seq((#ARGV - 1) / 8)
for i = 2, #ARGV, 8 do
  local flag = add_job(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5],
    ARGV[i + 6], ARGV[i + 7])
  out[#out + 1] = flag
  if flag == 1 then any = true end
end
if any then wake() end
publish_added()
return out
