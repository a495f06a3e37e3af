-- Store new jobs as waiting or delayed; a job id that exists is left untouched.
-- KEYS: common.  ARGV[1]: base; then 7 fields per job:
--   id, name, data (JSON), priority (-1000..1000), delay_ms, run_at_ms (0 = unset), options (JSON or "")
-- Returns: one integer per job, 1 = created, 0 = already existed.
--@include common
--@include add_job
local created = {}
local any = false
for i = 2, #ARGV, 7 do
  local flag = add_job(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5],
    ARGV[i + 6])
  created[#created + 1] = flag
  if flag == 1 then any = true end
end
if any then wake() end
return created
