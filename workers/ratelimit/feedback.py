"""How the limiter reacts to what the provider answered (docs/architecture.md, "Rate limiter").

Adaptive mode (AIMD, cluster-wide): a 429 blocks every worker until `retry-after` (or
`x-ratelimit-reset`) and may cut the rate: at most once per CUT_WINDOW_S, and never for a
429 to a request sent before the last cut, so one overload does not collapse the rate.

Noise or limit: a limit refuses more of the requests the further the rate is over it; a
busy API refuses about the same share at any rate. Every outcome sent since the last cut
counts in a window (SHARE_WINDOW), and those sent while the rate is below that cut
(LEARN_BELOW) also in the noise floor (FLOOR_WINDOW). A 429 cuts only when the window's
share of 429s is clearly above the floor (NOISE_Z standard errors); until the floor is
measured it starts at MOST_NOISE, and before any cut, or while the key has seen no
success, every 429 cuts as before. A cut goes down to the share that got through
(1 - share of 429s, between LEAST_CUT_FACTOR and DECREASE_FACTOR), or by DECREASE_FACTOR
(DEEP_DECREASE_FACTOR for a quick repeat) while the window is too small to size it.

Successes grow the rate back, slowly near the rate that last drew a
429, faster far from it (like TCP CUBIC), and only while callers are actually waiting on
the limiter, so an idle cluster does not inflate its rate. A 429 or a success that states
the limit (`x-ratelimit-limit`) sets the rate just under it at once, and growth stops there.

503s and timeouts say the provider is loaded, not that we are over our quota: the caller
must NOT report them with `on_rate_limited`; it just retries later. The arithmetic is in
success.lua and limited.lua; these build their arguments.
"""

from __future__ import annotations

import math

from evalfleet.workers.ratelimit import tuning
from evalfleet.workers.ratelimit.limits import Limits


def below_stated(limit_rpm: float | None) -> float:
    """The rate to keep under a limit the provider stated; -1 (none) for the Lua scripts."""
    return limit_rpm * tuning.ADVERTISED_MARGIN if limit_rpm is not None and limit_rpm > 0 else -1


def block_seconds(retry_after_s: float | None, reset_s: float | None) -> float | None:
    """How long everyone waits: retry-after first (it names the moment), else the reset."""
    for value in (retry_after_s, reset_s):
        if value is not None and math.isfinite(value) and value > 0:
            return min(value, tuning.MAX_BLOCK_S)
    return None


def success_args(limits: Limits, limit_rpm: float | None, sent_at: float) -> list[float]:
    """ARGV of success.lua, in its order; `sent_at` < 0 when the request's slot is unknown."""
    return [
        int(limits.adaptive),
        limits.initial_rpm,
        limits.max_rpm,
        tuning.KEY_TTL_S,
        tuning.SLOW_GROWTH_PER_S,
        tuning.FAST_GROWTH_PER_S,
        tuning.HOLD_AFTER_CUT_S,
        tuning.BUSY_WINDOW_S,
        tuning.PROBE_ACCELERATION,
        below_stated(limit_rpm),
        sent_at,
        *_share_args(),
    ]


def limited_args(
    limits: Limits, block: float | None, sent_at: float, limit_rpm: float | None
) -> list[float]:
    """ARGV of limited.lua, in its order; `sent_at` < 0 when the request's slot is unknown."""
    return [
        int(limits.adaptive),
        limits.initial_rpm,
        limits.max_rpm,
        limits.min_rpm,
        tuning.KEY_TTL_S,
        block if block is not None else -1,
        sent_at,
        tuning.DECREASE_FACTOR,
        tuning.CUT_WINDOW_S,
        tuning.DEEP_DECREASE_FACTOR,
        tuning.QUICK_REPEAT_S,
        below_stated(limit_rpm),
        *_share_args(),
        tuning.FLOOR_PRIOR_WEIGHT,
        tuning.MOST_NOISE,
        tuning.NOISE_Z,
        tuning.SIZE_CUT_AFTER,
        tuning.LEAST_CUT_FACTOR,
    ]


def _share_args() -> list[float]:
    """How both scripts count an outcome (prelude.lua's count_outcome)."""
    return [tuning.SHARE_WINDOW, tuning.FLOOR_WINDOW, tuning.LEARN_BELOW]
