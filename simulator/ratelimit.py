"""Per-model request limits as token buckets, like Together's per-second enforcement."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["RateDecision", "RateLimiter"]


@dataclass(frozen=True)
class RateDecision:
    """Outcome of one request against its model's bucket, with the header values."""

    allowed: bool
    limit_per_s: float
    remaining: int
    reset_s: int  # whole seconds until the bucket is full again
    retry_after_s: int  # whole seconds until one request fits (>= 1 when refused)

    def headers(self) -> dict[str, str]:
        """The x-ratelimit-* headers (Together reports requests per second)."""
        headers = {
            "x-ratelimit-limit": f"{self.limit_per_s:g}",
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["retry-after"] = str(self.retry_after_s)
        return headers


class _Bucket:
    def __init__(self, rate_per_s: float, capacity: float, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.updated = now


class RateLimiter:
    """Token bucket per model: `rpm / 60` requests per second, a burst of `burst`.

    Together measures limits per second ("60 RPM" is enforced as 1 request per
    second), so the default burst is one second's worth: a client that sends a
    minute's quota at once is refused, as it would be there.
    """

    def __init__(
        self,
        rpm_by_model: Mapping[str, int],
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rpm_by_model = dict(rpm_by_model)
        self._burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self.reset()

    def reset(self) -> None:
        """Refill every bucket."""
        with self._lock:
            now = self._clock()
            self._buckets = {
                model: _Bucket(rpm / 60.0, self._capacity(rpm), now)
                for model, rpm in self._rpm_by_model.items()
            }

    def acquire(self, model: str) -> RateDecision | None:
        """Take one request from `model`'s bucket; None when the model is not limited."""
        with self._lock:
            bucket = self._buckets.get(model)
            if bucket is None:
                return None
            bucket.refill(self._clock())
            allowed = bucket.tokens >= 1.0
            if allowed:
                bucket.tokens -= 1.0
            missing_for_one = max(0.0, 1.0 - bucket.tokens)
            return RateDecision(
                allowed=allowed,
                limit_per_s=bucket.rate_per_s,
                remaining=int(bucket.tokens),
                reset_s=math.ceil((bucket.capacity - bucket.tokens) / bucket.rate_per_s),
                retry_after_s=max(1, math.ceil(missing_for_one / bucket.rate_per_s)),
            )

    def _capacity(self, rpm: int) -> float:
        if self._burst is not None:
            return self._burst
        return max(1.0, rpm / 60.0)
