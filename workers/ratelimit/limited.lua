-- A request on KEYS[1] drew a 429: block everyone, and in adaptive mode cut the rate.
-- ARGV: adaptive, initial rpm, cap rpm, min rpm, ttl, block s (<0 = none), sent at
-- (server epoch s, <0 = unknown), decrease factor, cut window s, deep decrease factor,
-- quick repeat s, the provider's stated limit in rpm less the margin (<=0 = not given).
-- Returns {cut (1/0), rate after, blocked until}.
local adaptive = tonumber(ARGV[1])
local block = tonumber(ARGV[6])
local sent_at = tonumber(ARGV[7])
local s = redis.call('HMGET', key, 'rate', 'last_cut', 'tat', 'ttat', 'blocked_until')
redis.call('HINCRBY', key, 'limited', 1)
local rate = current_rate(s[1], adaptive, tonumber(ARGV[2]), tonumber(ARGV[3]), 0)
local blocked = tonumber(s[5]) or 0
local last_cut = tonumber(s[2]) or 0
-- When the last cut or block ended: the reference for "this 429 came quickly".
local calm_since = math.max(last_cut, blocked)
local fields = {}
if block > 0 and now + block > blocked then
  blocked = now + block
  -- Push the schedules past the block, so the first slot after it is one slot, not a burst.
  table.insert(fields, 'blocked_until'); table.insert(fields, fmt(blocked))
  table.insert(fields, 'tat')
  table.insert(fields, fmt(math.max(tonumber(s[3]) or 0, blocked)))
  table.insert(fields, 'ttat')
  table.insert(fields, fmt(math.max(tonumber(s[4]) or 0, blocked)))
end
local cut = 0
if adaptive == 1 and now - last_cut >= tonumber(ARGV[9])
    and (sent_at < 0 or sent_at >= last_cut) then
  cut = 1
  local ceiling = rate
  if last_cut > 0 and now - calm_since < tonumber(ARGV[11]) then
    -- Far above the limit: the old rate says nothing about it, probe from the new one.
    rate = math.max(tonumber(ARGV[4]), rate * tonumber(ARGV[10]))
    ceiling = rate
  else
    rate = math.max(tonumber(ARGV[4]), rate * tonumber(ARGV[8]))
  end
  table.insert(fields, 'ceiling'); table.insert(fields, fmt(ceiling))
  table.insert(fields, 'rate'); table.insert(fields, fmt(rate))
  table.insert(fields, 'last_cut'); table.insert(fields, fmt(now))
  -- Slots reserved at the old rate are given up (acquire sees the cut): the schedule
  -- restarts now, or after the block, at the new rate.
  table.insert(fields, 'tat'); table.insert(fields, fmt(math.max(now, blocked)))
  redis.call('HINCRBY', key, 'cuts', 1)
end
-- The provider said what the limit is: go there at once instead of one cut a second.
local stated = stated_limit(tonumber(ARGV[12]), nil)
if adaptive == 1 and stated and rate > stated then
  rate = math.max(tonumber(ARGV[4]), stated)
  table.insert(fields, 'ceiling'); table.insert(fields, fmt(rate))
  table.insert(fields, 'rate'); table.insert(fields, fmt(rate))
end
if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
redis.call('EXPIRE', key, ARGV[5])
return {cut, fmt(rate), fmt(blocked)}
