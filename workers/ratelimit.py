"""A rate limiter shared by every worker on every machine, kept in Redis (DESIGN.md point 7).

One limiter per (base URL, model): requests per minute and, optionally, tokens per
minute. Requests are *spaced*, not windowed (GCRA, "theoretical arrival time"): each
request reserves the next slot, 60 / rate after the previous one, and sleeps until
it. Providers enforce limits as token buckets with about one second of burst
(Together: "600 RPM" is 10 requests per second), so a minute-window limiter that
sends its quota at once is refused there; evenly spaced requests are not.

Adaptive mode (AIMD, cluster-wide): a 429 cuts the rate by DECREASE_FACTOR (at most
once per CUT_WINDOW_S, and never for a 429 to a request sent before the last cut, so
one overload does not collapse the rate) and blocks every worker until `retry-after`
(or `x-ratelimit-reset`). Successes grow the rate back, slowly near the rate that
last drew a 429, faster far from it (like TCP CUBIC), and only while callers are
actually waiting on the limiter, so an idle cluster does not inflate its rate. A 429
or a success that states the limit (`x-ratelimit-limit`) sets the rate just under it at
once, and growth stops there.

503s and timeouts say the provider is loaded, not that we are over our quota: the
caller must NOT report them with `on_rate_limited`; it just retries later.

All state lives in one Redis hash per key and changes only inside Lua scripts that
read Redis' clock (`TIME`), so machines with skewed clocks agree. Keys expire after
KEY_TTL_S of silence; a restarted cluster within that hour keeps the learned rate.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import redis

__all__ = [
    "DECREASE_FACTOR",
    "KEY_TTL_S",
    "LimitKey",
    "RateLimitTimeout",
    "RateLimiter",
    "Reservation",
]

logger = logging.getLogger(__name__)

KEY_TTL_S = 3600
# Slots are reserved at most this far ahead: a cut or a block reaches the cluster
# within this delay instead of after the whole queue of waiting threads.
HORIZON_S = 1.0
# The rate at a 429 is ~10% over the limit (the provider's burst drains first), so
# x0.85 lands just under it; x0.5..0.7 (TCP, inspect_ai) would idle 10-20% of the quota.
DECREASE_FACTOR = 0.85
# A fresh 429 this soon after the previous block ended means the rate is still far
# above the limit (>~1.3x: the provider's one-second burst drained within seconds), so
# the cut goes deeper: from 5x too high, 4 cuts instead of 10.
DEEP_DECREASE_FACTOR = 0.6
QUICK_REPEAT_S = 3.0
CUT_WINDOW_S = 1.0  # at most one cut per window, whatever the number of 429s
HOLD_AFTER_CUT_S = 2.0  # no growth right after a cut: in-flight requests still count
# Growth, as a fraction of the rate per second while the rate is what limits throughput:
# SLOW x (1 + PROBE_ACCELERATION x how far the rate is above the last 429's rate, or
# above initial_rpm before any 429), at most FAST. Cautious where the limit was (the
# overshoot before a 429 is ~sqrt(2 x 0.005) = 10%), 10x faster once 90% above it, so
# an initial_rpm 2x too low is corrected in ~40 s, 5x in ~60 s, 10x in ~70 s.
SLOW_GROWTH_PER_S = 0.005
FAST_GROWTH_PER_S = 0.05
PROBE_ACCELERATION = 10.0
# A response's x-ratelimit-limit sets the rate just under it (Together: requests per
# second), and growth stops there.
ADVERTISED_MARGIN = 0.98
BUSY_WINDOW_S = 5.0  # callers waited within this window: the limiter is the bottleneck
MAX_BLOCK_S = 120.0  # a bogus retry-after must not freeze the cluster for hours
# A reservation that slept longer than this re-checks for a block set meanwhile.
RECHECK_AFTER_S = 0.005
# At a high request rate one round trip reserves this process the slots of the next
# BATCH_SPAN_S, at most MAX_BATCH: a Redis call per request cost 8% of a worker's CPU at
# 64 requests in flight (bench/throughput.py). A slot left unused for a span is dropped,
# never sent in a burst; a cut or a block reaches a process's requests within a span.
BATCH_SPAN_S = 0.05
MAX_BATCH = 16

# Float fields are written with %.6f: Lua's tostring keeps 14 digits, i.e. only 0.1 ms
# of an epoch time, and a number returned from Lua is truncated to an integer.
_LUA_PRELUDE = """
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
"""

# ARGV: tokens, adaptive (1/0), fixed rpm (0 = none), initial rpm, cap rpm, tpm (0 = none),
# horizon s, ttl s, most slots to reserve, span s they may cover. Returns {granted (1/0),
# seconds to wait, slot (server epoch s), slots reserved, seconds between them, now}.
_RESERVE = (
    _LUA_PRELUDE
    + """
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
"""
)

# ARGV: adaptive, initial rpm, cap rpm, ttl, slow growth, fast growth, hold s, busy s,
# probe acceleration, the provider's stated limit in rpm less the margin (<=0 = not given).
# Returns the rate after this success.
_SUCCESS = (
    _LUA_PRELUDE
    + """
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
"""
)

# ARGV: adaptive, initial rpm, cap rpm, min rpm, ttl, block s (<0 = none), sent at
# (server epoch s, <0 = unknown), decrease factor, cut window s, deep decrease factor,
# quick repeat s, the provider's stated limit in rpm less the margin (<=0 = not given).
# Returns {cut (1/0), rate after, blocked until}.
_LIMITED = (
    _LUA_PRELUDE
    + """
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
"""
)


class RateLimitTimeout(TimeoutError):
    """The limiter could not grant a slot within the caller's timeout."""


@dataclass(frozen=True)
class LimitKey:
    """What one limit applies to: a provider's base URL and one model."""

    base_url: str
    model: str

    def redis_key(self) -> str:
        # Hashed URL: no credentials or odd characters from the URL end up in key names.
        digest = hashlib.sha1(self.base_url.encode("utf-8")).hexdigest()[:12]
        return f"evalfleet:rl:{digest}:{self.model}"


@dataclass(frozen=True)
class Reservation:
    """Answer of one `reserve` call; times in seconds, `slot` on Redis' clock."""

    granted: bool  # True: a slot is yours, send at `slot`; False: ask again later
    wait_s: float  # until the slot (granted) or until asking again is worthwhile
    slot: float
    reserved_at: float  # when Redis handed it out


class RateLimiter:
    """Cluster-wide limiter for one `LimitKey`; thread-safe, one per process and key is enough.

    `rpm`: the user's limit; with `adaptive=False` a fixed rate (None = no request
    limit), with `adaptive=True` a cap on the learned rate. `tpm`: tokens per minute,
    spaced like requests (cost = the `tokens` passed to `acquire`). `initial_rpm` is
    used only when Redis has no state for the key yet.
    """

    def __init__(
        self,
        redis: redis.Redis,
        key: LimitKey,
        rpm: float | None = None,
        tpm: float | None = None,
        adaptive: bool = True,
        initial_rpm: float = 600.0,
        min_rpm: float = 6.0,
        max_rpm: float = 100_000.0,
        *,
        horizon_s: float = HORIZON_S,
    ) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number, got {value}")
        if not 0 < min_rpm <= max_rpm:
            raise ValueError(f"need 0 < min_rpm <= max_rpm, got {min_rpm} and {max_rpm}")
        if not horizon_s > 0:
            raise ValueError(f"horizon_s must be > 0, got {horizon_s}")
        self.key = key
        self.adaptive = adaptive
        self.tpm = tpm
        self.horizon_s = horizon_s
        self._redis = redis
        self._name = key.redis_key()
        self._fixed_rpm = 0.0 if adaptive or rpm is None else float(rpm)
        self.max_rpm = max_rpm if rpm is None else max(min_rpm, min(max_rpm, rpm))
        self.min_rpm = min_rpm
        self.initial_rpm = max(min_rpm, min(initial_rpm, self.max_rpm))
        self._reserve = redis.register_script(_RESERVE)
        self._success = redis.register_script(_SUCCESS)
        self._limited = redis.register_script(_LIMITED)
        # The slot of this thread's last request: a 429 to a request sent before the
        # last cut is an echo of the overload that caused that cut, not a new signal.
        self._local = threading.local()
        # Slots reserved ahead for this process's callers, each with its local send time.
        self._ahead: deque[tuple[float, Reservation]] = deque()
        self._ahead_lock = threading.Lock()

    def reserve(self, tokens: int = 0) -> Reservation:
        """Try to reserve the next slot, without sleeping (acquire = reserve + sleep)."""
        return self.reserve_slots(tokens, 1)[0]

    def reserve_slots(self, tokens: int, most: int) -> list[Reservation]:
        """Reserve up to `most` consecutive slots in one call, as many as fit in
        BATCH_SPAN_S at the current rate (one when a token limit applies); or one refusal."""
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        granted, wait_s, slot, count, spacing, now = self._reserve(
            keys=[self._name],
            args=[
                tokens,
                int(self.adaptive),
                self._fixed_rpm,
                self.initial_rpm,
                self.max_rpm,
                self.tpm or 0,
                self.horizon_s,
                KEY_TTL_S,
                most,
                BATCH_SPAN_S,
            ],
        )
        first = Reservation(int(granted) == 1, float(wait_s), float(slot), float(now))
        gap = float(spacing)
        return [
            replace(first, wait_s=first.wait_s + i * gap, slot=first.slot + i * gap)
            for i in range(max(1, int(count)))
        ]

    def acquire(self, tokens: int = 0, timeout: float = 300.0) -> float:
        """Block until this request may be sent; returns the seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            reservation = self._take_ahead() or self._reserve_ahead(tokens)
            if reservation.granted:
                time.sleep(reservation.wait_s)
                # A 429 may have blocked everyone or cut the rate while we slept: our slot
                # then falls inside the block or was spaced for the old rate, and sending
                # would only draw another 429.
                if reservation.wait_s > RECHECK_AFTER_S and self._stale(reservation):
                    self._drop_ahead()  # reserved before the same cut or block
                    continue
                self._local.slot = reservation.slot
                return time.monotonic() - started
            # Jitter spreads the threads that were turned away, so they do not all ask
            # again at the same instant; the horizon keeps enough slots reserved meanwhile.
            pause = reservation.wait_s + random.uniform(0.25, 1.0) * self.horizon_s
            if time.monotonic() + pause > deadline:
                raise RateLimitTimeout(f"no slot for {self._name} within {timeout:g}s")
            time.sleep(pause)

    def _reserve_ahead(self, tokens: int) -> Reservation:
        """The first of the slots one call reserves; this process's later callers take the rest."""
        first, *rest = self.reserve_slots(tokens, MAX_BATCH)
        if rest:
            received = time.monotonic()
            with self._ahead_lock:
                self._ahead.extend((received + r.wait_s, r) for r in rest)
        return first

    def _take_ahead(self) -> Reservation | None:
        """The next slot reserved ahead, its wait counted from now; None when there is none."""
        with self._ahead_lock:
            now = time.monotonic()
            while self._ahead:
                send_at, reservation = self._ahead.popleft()
                if send_at >= now - BATCH_SPAN_S:
                    return replace(reservation, wait_s=max(0.0, send_at - now))
        return None

    def _drop_ahead(self) -> None:
        with self._ahead_lock:
            self._ahead.clear()

    def on_success(self, limit_rpm: float | None = None) -> None:
        """Report a successful request: in adaptive mode, the rate grows (additive increase),
        never past `limit_rpm`, the limit the response stated (`x-ratelimit-limit`), which
        it drops to at once. A fixed limit has nothing to learn: no round trip to Redis."""
        if not self.adaptive:
            return
        rate = self._success(
            keys=[self._name],
            args=[
                int(self.adaptive),
                self.initial_rpm,
                self.max_rpm,
                KEY_TTL_S,
                SLOW_GROWTH_PER_S,
                FAST_GROWTH_PER_S,
                HOLD_AFTER_CUT_S,
                BUSY_WINDOW_S,
                PROBE_ACCELERATION,
                _below_stated(limit_rpm),
            ],
        )
        logger.debug("success on %s: rate %s rpm", self._name, rate)

    def on_rate_limited(
        self,
        retry_after_s: float | None,
        reset_s: float | None = None,
        limit_rpm: float | None = None,
    ) -> None:
        """Report a 429 (only a 429: not 503s, not timeouts).

        Blocks every worker for `retry_after_s` (else `reset_s`, e.g. from
        `x-ratelimit-reset`), and in adaptive mode cuts the rate (multiplicative decrease),
        straight to just under `limit_rpm` when the provider said its limit (`x-ratelimit-limit`);
        the rate then never grows past it.
        Call it from the thread that acquired the request's slot: the limiter remembers
        that slot per thread, to ignore 429s to requests sent before the last cut.
        """
        block = _block_seconds(retry_after_s, reset_s)
        sent_at: float = getattr(self._local, "slot", -1.0)
        self._drop_ahead()  # spaced for the rate before this 429, maybe inside its block
        cut, rate, _blocked_until = self._limited(
            keys=[self._name],
            args=[
                int(self.adaptive),
                self.initial_rpm,
                self.max_rpm,
                self.min_rpm,
                KEY_TTL_S,
                block if block is not None else -1,
                sent_at,
                DECREASE_FACTOR,
                CUT_WINDOW_S,
                DEEP_DECREASE_FACTOR,
                QUICK_REPEAT_S,
                _below_stated(limit_rpm),
            ],
        )
        if int(cut) == 1:
            # The key, not the base URL: a URL may carry credentials (DESIGN.md point 9).
            logger.info(
                "429 on %s: rate cut to %.1f rpm, blocked %.2fs",
                self._name,
                float(rate),
                block or 0.0,
            )
        else:
            logger.debug("429 on %s: no cut (recent cut or older request)", self._name)

    def current_rpm(self) -> float:
        """The rate in force now (inf when requests are not limited)."""
        if not self.adaptive:
            return self._fixed_rpm if self._fixed_rpm > 0 else math.inf
        stored = self._redis.hget(self._name, "rate")
        rate = float(stored) if stored is not None else self.initial_rpm
        return min(rate, self.max_rpm)

    def snapshot(self) -> dict[str, float]:
        """State for `evalfleet status` and benchmarks (times in seconds, counts as floats)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.time()
        pipe.hgetall(self._name)
        (seconds, micros), raw = pipe.execute()
        now = float(seconds) + float(micros) / 1e6
        state = {_text(k): float(v) for k, v in raw.items()}
        blocked_until = state.get("blocked_until", 0.0)
        return {
            "rpm": self.current_rpm(),
            "blocked_until": blocked_until,
            "blocked_for_s": max(0.0, blocked_until - now),
            "backlog_s": max(0.0, state.get("tat", now) - now),
            "last_429_rpm": state.get("ceiling", 0.0),
            "successes": state.get("successes", 0.0),
            "rate_limited": state.get("limited", 0.0),
            "cuts": state.get("cuts", 0.0),
        }

    def _stale(self, reservation: Reservation) -> bool:
        """Whether a block is on now, or the rate was cut after this slot was reserved."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.time()
        pipe.hmget(self._name, "blocked_until", "last_cut")
        (seconds, micros), (blocked, last_cut) = pipe.execute()
        now = float(seconds) + float(micros) / 1e6
        return float(blocked or 0) > now or float(last_cut or 0) >= reservation.reserved_at


def _below_stated(limit_rpm: float | None) -> float:
    """The rate to keep under a limit the provider stated; -1 (none) for the Lua scripts."""
    return limit_rpm * ADVERTISED_MARGIN if limit_rpm is not None and limit_rpm > 0 else -1


def _block_seconds(retry_after_s: float | None, reset_s: float | None) -> float | None:
    """How long everyone waits: retry-after first (it names the moment), else the reset."""
    for value in (retry_after_s, reset_s):
        if value is not None and math.isfinite(value) and value > 0:
            return min(value, MAX_BLOCK_S)
    return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
