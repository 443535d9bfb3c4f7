-- Shared head of every limiter script (scripts.py puts it in front of each).
-- Float fields are written with %.6f: Lua's tostring keeps 14 digits, i.e. only 0.1 ms
-- of an epoch time, and a number returned from Lua is truncated to an integer.
-- The time is Redis' own (TIME), so machines with skewed clocks agree.
local function fmt(x) return string.format('%.6f', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local key = KEYS[1]
local function current_rate(stored, adaptive, initial, cap, fixed)
  if adaptive == 0 then return fixed end
  local rate = tonumber(stored) or initial
  if rate > cap then rate = cap end
  return rate
end
-- The rate not to exceed that the provider stated: now (given > 0, kept for later
-- calls) or before (stored); nil when it never said.
local function stated_limit(given, stored)
  if given > 0 then
    redis.call('HSET', key, 'advertised', fmt(given))
    return given
  end
  return tonumber(stored)
end
-- Count one outcome (limited: 1 for a 429, 0 for a success) of a request sent after the
-- last cut: in the window of outcomes since that cut, and in the noise floor while the
-- rate is at most `learn` x the rate the cut came from (below where 429s drew the cut).
-- Both are exponential windows of about `window` and `floor_window` outcomes.
-- Returns the window's outcomes and 429s, then the floor's.
local function count_outcome(rate, limited, window, floor_window, learn)
  local s = redis.call('HMGET', key, 'win_n', 'win_k', 'floor_n', 'floor_k', 'cut_from')
  local keep = 1 - 1 / window
  local win_n = (tonumber(s[1]) or 0) * keep + 1
  local win_k = (tonumber(s[2]) or 0) * keep + limited
  local fields = {'win_n', fmt(win_n), 'win_k', fmt(win_k)}
  local floor_n = tonumber(s[3]) or 0
  local floor_k = tonumber(s[4]) or 0
  local cut_from = tonumber(s[5])
  if cut_from and rate <= learn * cut_from then
    local floor_keep = 1 - 1 / floor_window
    floor_n = floor_n * floor_keep + 1
    floor_k = floor_k * floor_keep + limited
    table.insert(fields, 'floor_n'); table.insert(fields, fmt(floor_n))
    table.insert(fields, 'floor_k'); table.insert(fields, fmt(floor_k))
  end
  redis.call('HSET', key, unpack(fields))
  return win_n, win_k, floor_n, floor_k
end
