"""A rate limiter shared by every worker on every machine, kept in Redis
(docs/architecture.md, "Rate limiter"; D7 cluster-wide rate limits).

One limit per (base URL, model): requests per minute and, optionally, tokens per minute.
Requests are spaced evenly (GCRA), not sent a minute's quota at a time; a 429 blocks
everyone until retry-after, in adaptive mode it cuts the shared rate unless the share of
429s says they are noise (feedback.py), and successes grow the rate back.
All state is one Redis hash per key, changed only by Lua scripts on Redis' clock.
"""

from evalfleet.workers.ratelimit.key import LimitKey
from evalfleet.workers.ratelimit.limiter import RateLimiter
from evalfleet.workers.ratelimit.reservation import RateLimitTimeout, Reservation
from evalfleet.workers.ratelimit.tuning import DECREASE_FACTOR, KEY_TTL_S

__all__ = [
    "DECREASE_FACTOR",
    "KEY_TTL_S",
    "LimitKey",
    "RateLimitTimeout",
    "RateLimiter",
    "Reservation",
]
