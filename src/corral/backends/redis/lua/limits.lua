-- Replace a queue's flow-control limits; groups held by the old limits get back in
-- line (the next claim holds them again if the new limits still do).
-- KEYS: common.  ARGV: 1 base, then max_active, rate_max, rate_ms, gmax, grate,
--   grate_ms ("" = no limit)
--@include common
local held = redis.call('SMEMBERS', GCAPPED)
for _, g in ipairs(redis.call('ZRANGE', GPARKED, 0, -1)) do held[#held + 1] = g end
for _, g in ipairs(held) do touch(G_PREFIX .. g) end
local names = {'max_active', 'rate_max', 'rate_ms', 'gmax', 'grate', 'grate_ms'}
for i, name in ipairs(names) do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', K_META, name)
  else
    redis.call('HSET', K_META, name, ARGV[i + 1])
  end
end
redis.call('DEL', GCAPPED, GPARKED)
for _, g in ipairs(held) do
  if redis.call('EXISTS', G_PREFIX .. g) == 1 then line_up(g) end
end
wake()  -- limits may have loosened
return 1
