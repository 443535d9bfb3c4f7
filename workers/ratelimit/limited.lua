-- A request on KEYS[1] drew a 429: block everyone, and in adaptive mode cut the rate
-- unless the share of 429s says they are noise (feedback.py, tuning.py: "Noise").
-- ARGV: adaptive, initial rpm, cap rpm, min rpm, ttl, block s (<0 = none), sent at
-- (server epoch s, <0 = unknown), decrease factor, cut window s, deep decrease factor,
-- quick repeat s, the provider's stated limit in rpm less the margin (<=0 = not given),
-- share window, floor window, learn below, prior weight, most noise, z, fewest outcomes
-- to size a cut by, least cut factor.
-- Returns {cut (1/0), rate after, blocked until}.
local adaptive = tonumber(ARGV[1])
local block = tonumber(ARGV[6])
local sent_at = tonumber(ARGV[7])
local s = redis.call('HMGET', key, 'rate', 'last_cut', 'tat', 'ttat', 'blocked_until',
  'successes', 'cut_from')
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
-- A 429 to a request sent before the last cut is an echo of the overload behind that cut.
local fresh = sent_at < 0 or sent_at >= last_cut
local cut = 0
if adaptive == 1 and fresh then
  local win_n, win_k, floor_n, floor_k = count_outcome(rate, 1, tonumber(ARGV[13]),
    tonumber(ARGV[14]), tonumber(ARGV[15]))
  local factor = nil  -- the cut, if any: the new rate is rate x factor
  local deep = false
  local quick = last_cut > 0 and now - calm_since < tonumber(ARGV[11])
  if now - last_cut < tonumber(ARGV[9]) then
    factor = nil  -- at most one cut per window, whatever the number of 429s
  elseif (tonumber(s[6]) or 0) == 0 then
    -- Nothing but 429s so far: each one is the limit, as before noise was told apart.
    deep = quick
    factor = deep and tonumber(ARGV[10]) or tonumber(ARGV[8])
  else
    local share = win_k / win_n
    -- The noise floor: the share of 429s measured below the last cut, starting from the
    -- most noise tolerated (worth `weight` outcomes) until measured, never above it.
    -- Before any cut nothing was measured: then any 429 says the rate is over the limit.
    local most = tonumber(ARGV[17])
    local noise = 0
    if s[7] then
      local weight = tonumber(ARGV[16])
      noise = math.min(most, (floor_k + most * weight) / (floor_n + weight))
    end
    local over = share > 0
    if noise > 0 then
      over = share - noise > tonumber(ARGV[18]) * math.sqrt(noise * (1 - noise) / win_n)
    end
    if over and win_n >= tonumber(ARGV[19]) then
      -- Down to the share that got through: a limit lets no more than that succeed.
      factor = math.min(tonumber(ARGV[8]), math.max(tonumber(ARGV[20]), 1 - share))
      deep = factor < tonumber(ARGV[8])
    elseif over then
      deep = quick
      factor = deep and tonumber(ARGV[10]) or tonumber(ARGV[8])
    end
    if over and share >= most then
      -- Far more 429s than any noise: what the floor learned meanwhile was the limit.
      table.insert(fields, 'floor_n'); table.insert(fields, fmt(0))
      table.insert(fields, 'floor_k'); table.insert(fields, fmt(0))
    end
  end
  if factor then
    cut = 1
    local before = rate
    rate = math.max(tonumber(ARGV[4]), rate * factor)
    -- Far above the limit (a deep cut), the old rate says nothing about it: probe from
    -- the new one. Otherwise growth is cautious near the rate that drew the cut.
    local ceiling = before
    if deep then ceiling = rate end
    table.insert(fields, 'ceiling'); table.insert(fields, fmt(ceiling))
    table.insert(fields, 'rate'); table.insert(fields, fmt(rate))
    table.insert(fields, 'last_cut'); table.insert(fields, fmt(now))
    table.insert(fields, 'cut_from'); table.insert(fields, fmt(before))
    -- The window restarts: it measures the share at the new rate only.
    table.insert(fields, 'win_n'); table.insert(fields, fmt(0))
    table.insert(fields, 'win_k'); table.insert(fields, fmt(0))
    -- Slots reserved at the old rate are given up (acquire sees the cut): the schedule
    -- restarts now, or after the block, at the new rate.
    table.insert(fields, 'tat'); table.insert(fields, fmt(math.max(now, blocked)))
    redis.call('HINCRBY', key, 'cuts', 1)
  end
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
