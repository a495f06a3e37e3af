-- Read one page of a state's jobs in listing order, after a position (the last row of
-- the page before; backends/paging.py), with the records of its first rows. Reads only.
-- KEYS: common.  ARGV: 1 base, 2 state, 3 count, 4 how many rows to read records of,
-- then the position, if any:
--   completed/failed/cancelled (newest first), delayed, active: 5 score, 6 id
--   waiting (claim order): 5 band, 6 section (0 the priority-0 list, 1 ungrouped set,
--   2 grouped set), 7 score, 8 id, 9 the id that followed it in the list ('' if none)
-- Returns: {rows, records}: rows flat, per row its id then its position (score, or band,
-- section, score, next id; scores as text, a list row's score is its index); records, per row asked for, {HGETALL of its
-- hash, its errors, its logs} (old-layout lists, hash fields xe/xl, first).
--@include common
local state, count, wanted = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local P = 5  -- where the position starts in ARGV

-- a < b bytewise, as Redis orders members of equal score (Lua's < follows the locale).
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- How many members of `key` sort before (s, id); with `inclusive`, (s, id) itself too.
local function rank_of(key, s, id, inclusive)
  local at = redis.call('ZSCORE', key, id)
  if at and tonumber(at) == tonumber(s) then
    local r = redis.call('ZRANK', key, id)
    if inclusive then return r + 1 end
    return r
  end
  -- The row left (or moved): find its place among the members of the same score.
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. s)
  local hi = redis.call('ZCOUNT', key, '-inf', s)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if before(redis.call('ZRANGE', key, mid, mid)[1], id) then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- The records of the first `wanted` rows (ids every `width` entries of `rows`).
local function with_records(rows, width)
  local records = {}
  for i = 1, math.min(wanted, #rows / width) do
    local id = rows[(i - 1) * width + 1]
    local k = jkey(id)
    local h = redis.call('HGETALL', k)
    local errors, logs = {}, {}
    local f = redis.call('HMGET', k, 'je', 'jl', 'xe', 'xl')
    for n, list in ipairs({errors, logs}) do
      local old = k .. (n == 1 and ':err' or ':log')
      if f[n + 2] and redis.call('TYPE', old).ok == 'list' then
        for _, v in ipairs(redis.call('LRANGE', old, 0, -1)) do list[#list + 1] = v end
      end
      if f[n] then
        local new = BASE .. (n == 1 and 'je:' or 'jl:') .. id
        for _, v in ipairs(redis.call('LRANGE', new, 0, -1)) do list[#list + 1] = v end
      end
    end
    records[i] = {h, errors, logs}
  end
  return {rows, records}
end

if state ~= 'waiting' then
  local key = BASE .. state
  local rows = {}
  if state == 'completed' or state == 'failed' or state == 'cancelled' then
    if not ARGV[P] then
      rows = redis.call('ZREVRANGE', key, 0, count - 1, 'WITHSCORES')
    else
      -- Newest first: the rows before the position in score order, read backwards.
      local r = rank_of(key, ARGV[P], ARGV[P + 1], false)
      if r > 0 then
        local flat = redis.call('ZRANGE', key, math.max(0, r - count), r - 1, 'WITHSCORES')
        for i = #flat - 1, 1, -2 do
          rows[#rows + 1] = flat[i]
          rows[#rows + 1] = flat[i + 1]
        end
      end
    end
  else
    local r = 0
    if ARGV[P] then r = rank_of(key, ARGV[P], ARGV[P + 1], true) end
    rows = redis.call('ZRANGE', key, r, r + count - 1, 'WITHSCORES')
  end
  return with_records(rows, 2)
end

-- Waiting: the sort key of a row is (band, section, score); lower runs first.
local c
if ARGV[P] then
  c = {band = tonumber(ARGV[P]), section = tonumber(ARGV[P + 1]), score = ARGV[P + 2],
    id = ARGV[P + 3], next = ARGV[P + 4]}
end

local function from_set(key, section)
  local start = 0
  if c then
    if section == c.section then
      start = rank_of(key, c.score, c.id, true)
    elseif section > c.section then
      start = redis.call('ZCOUNT', key, '-inf', '(' .. score(c.band * BAND))
    else
      start = redis.call('ZCOUNT', key, '-inf', '(' .. score((c.band + 1) * BAND))
    end
  end
  local flat = redis.call('ZRANGE', key, start, start + count - 1, 'WITHSCORES')
  local rows = {}
  for i = 1, #flat, 2 do
    local s = tonumber(flat[i + 1])
    rows[#rows + 1] = {math.floor(s / BAND), section, s, flat[i], flat[i + 1]}
  end
  return rows
end

-- The list holds priority 0 (band 1000) only, ahead of the sets' members of that band.
local function from_list()
  local start = 0
  if c and c.band >= 1000 then
    if c.band > 1000 or c.section > 0 then return {} end
    -- Where the row was (its score): still there unless the line moved. LINDEX skips
    -- whole list nodes; LPOS compares every id before the row (13 ms 250,000 deep).
    local p = tonumber(c.score)
    if not (p and p >= 0 and redis.call('LINDEX', K_FIFO, p) == c.id) then
      p = redis.call('LPOS', K_FIFO, c.id)
    end
    if p then
      start = p + 1
    elseif c.next ~= '' then
      -- The row left the line: resume at the one after it; both gone means the
      -- line was claimed past them (it is served from the head), so start over.
      start = redis.call('LPOS', K_FIFO, c.next) or 0
    end
  end
  local ids = redis.call('LRANGE', K_FIFO, start, start + count)
  local rows = {}
  for i = 1, math.min(#ids, count) do
    rows[i] = {1000, 0, i, ids[i], string.format('%d', start + i - 1), ids[i + 1] or ''}
  end
  return rows
end

local out = {}
local sources = {from_list(), from_set(K_WAIT, 1), from_set(GW, 2)}
local at = {1, 1, 1}
local function less(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  if a[2] ~= b[2] then return a[2] < b[2] end
  return a[3] < b[3]
end
for _ = 1, count do
  local best
  for i = 1, 3 do
    local row = sources[i][at[i]]
    if row and (not best or less(row, sources[best][at[best]])) then best = i end
  end
  if not best then break end
  local row = sources[best][at[best]]
  at[best] = at[best] + 1
  out[#out + 1] = row[4]
  out[#out + 1] = row[1]
  out[#out + 1] = row[2]
  out[#out + 1] = row[5]
  out[#out + 1] = row[6] or ''
end
return with_records(out, 5)
