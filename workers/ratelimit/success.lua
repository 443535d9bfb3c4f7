-- A request on KEYS[1] succeeded: count it and, in adaptive mode, grow the rate.
-- ARGV: adaptive, initial rpm, cap rpm, ttl, slow growth, fast growth, hold s, busy s,
-- probe acceleration, the provider's stated limit in rpm less the margin (<=0 = not given),
-- sent at (server epoch s, <0 = unknown), share window, floor window, learn below.
-- Returns the rate after this success.
local adaptive = tonumber(ARGV[1])
local initial = tonumber(ARGV[2])
local s = redis.call('HMGET', key, 'rate', 'last_cut', 'ceiling', 'last_queued', 'advertised')
redis.call('HINCRBY', key, 'successes', 1)
redis.call('EXPIRE', key, ARGV[4])
if adaptive == 0 then return fmt(0) end
-- Never above a limit the provider stated (now or before): probing past it buys 429s.
local cap = math.min(tonumber(ARGV[3]), stated_limit(tonumber(ARGV[10]), s[5]) or math.huge)
local rate = current_rate(s[1], adaptive, initial, cap, 0)
if (tonumber(s[1]) or initial) > cap then redis.call('HSET', key, 'rate', fmt(rate)) end
-- A success is an outcome at the rate in force since the last cut (feedback.py: noise).
local sent_at = tonumber(ARGV[11])
if sent_at < 0 or sent_at >= (tonumber(s[2]) or 0) then
  count_outcome(rate, 0, tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14]))
end
if now - (tonumber(s[2]) or 0) < tonumber(ARGV[7]) then return fmt(rate) end
-- Grow only while callers wait on the limiter: otherwise the rate is not what limits
-- throughput, and growing it would only store up a burst for later.
if now - (tonumber(s[4]) or 0) > math.max(tonumber(ARGV[8]), 2 * 60 / rate) then
  return fmt(rate)
end
local above = math.max(0, rate / (tonumber(s[3]) or initial) - 1)
local growth = math.min(tonumber(ARGV[6]), tonumber(ARGV[5]) * (1 + tonumber(ARGV[9]) * above))
-- Under a stated limit the cap keeps growth from overshooting: recover from a cut fast.
if cap < tonumber(ARGV[3]) then growth = tonumber(ARGV[6]) end
-- One success per 60 / rate seconds: +60 * growth rpm each is +growth x rate per second.
rate = math.min(cap, rate + 60 * growth)
redis.call('HSET', key, 'rate', fmt(rate))
return fmt(rate)
