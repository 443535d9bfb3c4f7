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
