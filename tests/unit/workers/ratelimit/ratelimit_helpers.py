"""What the rate limiter's tests share besides fixtures (those are in conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Callable

from evalfleet.simulator.config import SIM_BASE
from evalfleet.workers.ratelimit import LimitKey, RateLimiter

REDIS_URL = os.environ.get("EVALFLEET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MODEL = SIM_BASE

MakeKey = Callable[..., LimitKey]


def gaps(slots: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(slots, slots[1:], strict=False)]


def count_reservation_calls(limiter: RateLimiter) -> list[int]:
    """Counts the limiter's reserve round trips to Redis (one element per call)."""
    calls: list[int] = []
    script = limiter._reserve

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return script(*args, **kwargs)

    limiter._reserve = counted  # type: ignore[assignment]
    return calls
