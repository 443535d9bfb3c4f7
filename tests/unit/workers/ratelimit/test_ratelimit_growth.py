"""Successes: the adaptive rate grows back only while callers wait on it, never past the
user's rpm, and not right after a cut (docs/architecture.md, "Rate limiter").

Assertions are on reserved slots (Redis' clock), not on measured sleeps: this machine
is shared and noisy. Every test uses its own key, deleted afterwards (conftest.py).
"""

from __future__ import annotations

import pytest
import redis
from ratelimit_helpers import MakeKey

from evalfleet.workers.ratelimit import RateLimiter, tuning


def test_successes_grow_the_rate_while_callers_wait_on_the_limiter(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given an adaptive limit at 600 rpm with callers queued on it
    limiter = RateLimiter(client, make_key(), initial_rpm=600)
    limiter.reserve()
    assert limiter.reserve().wait_s > 0

    # When ten requests succeed
    for _ in range(10):
        limiter.on_success()

    # Then the rate grew slowly: +60 x SLOW_GROWTH_PER_S rpm per success near the start
    grown = limiter.current_rpm()
    assert 600 < grown <= 600 + 10 * 60 * tuning.FAST_GROWTH_PER_S
    assert grown == pytest.approx(600 + 10 * 60 * tuning.SLOW_GROWTH_PER_S, rel=0.01)
    assert limiter.snapshot()["successes"] == 10


def test_successes_do_not_grow_the_rate_while_nobody_waits(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given an adaptive limit that no caller has had to wait on
    limiter = RateLimiter(client, make_key(), initial_rpm=600)
    limiter.reserve()

    # When requests succeed
    for _ in range(10):
        limiter.on_success()

    # Then the rate is not what limits throughput, so it is not inflated
    assert limiter.current_rpm() == pytest.approx(600)


def test_successes_never_grow_the_rate_above_the_users_rpm(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given an adaptive limit capped by the user at 601 rpm, with callers queued
    limiter = RateLimiter(client, make_key(), rpm=601, initial_rpm=600)
    limiter.reserve()
    limiter.reserve()

    # When many requests succeed
    for _ in range(50):
        limiter.on_success()

    # Then the rate stops at the user's limit
    assert limiter.current_rpm() == pytest.approx(601)


def test_successes_right_after_a_cut_do_not_grow_the_rate(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given an adaptive limit just cut by a 429, with callers queued
    limiter = RateLimiter(client, make_key(), initial_rpm=600)
    limiter.on_rate_limited(retry_after_s=None)
    limiter.reserve()
    limiter.reserve()

    # When requests in flight succeed during the hold-off
    for _ in range(10):
        limiter.on_success()

    # Then the cut stands
    assert limiter.current_rpm() == pytest.approx(600 * tuning.DECREASE_FACTOR)
