-- Reserve the next slot(s) of KEYS[1].
-- ARGV: tokens, adaptive (1/0), fixed rpm (0 = none), initial rpm, cap rpm, tpm (0 = none),
-- horizon s, ttl s, most slots to reserve, span s they may cover. Returns {granted (1/0),
-- seconds to wait, slot (server epoch s), slots reserved, seconds between them, now}.
local tokens = tonumber(ARGV[1])
local adaptive = tonumber(ARGV[2])
local tpm = tonumber(ARGV[6])
local horizon = tonumber(ARGV[7])
local s = redis.call('HMGET', key, 'rate', 'tat', 'ttat', 'blocked_until')
local rate = current_rate(s[1], adaptive, tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[3]))
local tat = math.max(tonumber(s[2]) or now, now)
local ttat = math.max(tonumber(s[3]) or now, now)
local use_tokens = tpm > 0 and tokens > 0
local slot = now
if rate > 0 then slot = tat end
if use_tokens and ttat > slot then slot = ttat end
-- A block (retry-after) holds every slot back; slots just after it can be reserved
-- during it, so the first one is not lost to callers still asleep.
slot = math.max(slot, tonumber(s[4]) or 0)
if slot - now > horizon then
  -- Not reserved: a thread far back in the queue must not hold a slot that a later
  -- cut or block can no longer move.
  redis.call('HSET', key, 'last_queued', fmt(now))
  redis.call('EXPIRE', key, ARGV[8])
  return {0, fmt(slot - now - horizon), fmt(slot), 0, fmt(0), fmt(now)}
end
-- At a high request rate (and no token limit, whose cost differs per request) one call
-- reserves the next slots of up to `span` seconds for the caller's process.
local count = 1
local spacing = 0
if rate > 0 then
  spacing = 60 / rate
  if not use_tokens then
    count = math.max(1, math.min(tonumber(ARGV[9]), math.floor(tonumber(ARGV[10]) / spacing)))
  end
end
local fields = {'rate', fmt(rate)}
if rate > 0 then
  table.insert(fields, 'tat'); table.insert(fields, fmt(slot + count * spacing))
end
if use_tokens then
  table.insert(fields, 'ttat'); table.insert(fields, fmt(slot + tokens * 60 / tpm))
end
if slot > now then
  table.insert(fields, 'last_queued'); table.insert(fields, fmt(now))
end
redis.call('HSET', key, unpack(fields))
redis.call('EXPIRE', key, ARGV[8])
return {1, fmt(slot - now), fmt(slot), count, fmt(spacing), fmt(now)}
