"""Every tuning constant of the rate limiter, each beside its reason
(docs/architecture.md, "Rate limiter").

The other modules read them as `tuning.NAME` at call time, so a test can patch one here.
"""

from __future__ import annotations

# A key's state outlives an hour of silence, no more: a cluster restarted within the hour
# keeps the rate it learned, and a key nobody uses any more does not linger in Redis.
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
MAX_BATCH = 64  # at 16, 64 threads at ~16,000 requests/s still made ~100 calls a second
# A slot this close is sent at once: a shorter sleep only hands the GIL to another thread
# (the sleep was 2.4% of a worker's CPU at 64 requests in flight), and a provider's
# one-second burst does not see a millisecond.
LEAST_SLEEP_S = 0.001

# Noise: 429s that do not depend on the rate (a busy API), told from a limit's by their
# share (feedback.py). A limit refuses ~(1 - limit / rate) of the requests once the rate
# is over it; noise refuses its share p at any rate. So a 429 cuts only when the share of
# 429s since the last cut is clearly above the share measured at a lower rate.
# The share since the last cut, over about this many outcomes: 100 tells +6 points over a
# 10% floor at 2.5 sigma, the ~7% overshoot of a limit, within 10 s at 600 rpm.
SHARE_WINDOW = 100.0
# The noise floor, over about this many outcomes measured below a cut: 4x the window, so
# that its own error (+-1.5 points at 10%) does not turn noise into false cuts.
FLOOR_WINDOW = 400.0
# The floor learns only at rates up to this fraction of the rate a cut came from: there
# the overshoot that drew the cut is gone, and what 429s remain are noise.
LEARN_BELOW = 0.95
# Until measured, the floor starts at MOST_NOISE worth this many outcomes: after a first
# cut a busy API's 10% of 429s does not cut again before the floor is known, yet a
# measured floor replaces it within a few dozen outcomes.
FLOOR_PRIOR_WEIGHT = 5.0
# The most noise taken for noise: above a fifth of requests refused, the 429s are the limit
# (at 1.25x the limit), and what the floor learned meanwhile is forgotten.
MOST_NOISE = 0.2
# How clearly the share must exceed the floor, in standard errors of the window's share:
# at 2.5, 10% of random 429s over 100 outcomes cross it once in ~160 windows.
NOISE_Z = 2.5
# With at least this many outcomes since the last cut, a cut goes down to the share that
# got through (1 - share of 429s): what a limit lets succeed, so one cut from 5x lands near
# the limit; with fewer the share is too rough, and the cut is DECREASE_FACTOR (or DEEP).
SIZE_CUT_AFTER = 10.0
# A sized cut goes at most this deep at once: a rough share must not floor the rate.
LEAST_CUT_FACTOR = 0.5
