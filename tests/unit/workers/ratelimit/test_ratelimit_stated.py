"""A limit the provider states (x-ratelimit-limit): the rate goes just under it at once and
never grows past it (docs/architecture.md, "Rate limiter").

Assertions are on reserved slots (Redis' clock), not on measured sleeps: this machine
is shared and noisy. Every test uses its own key, deleted afterwards (conftest.py).
"""

from __future__ import annotations

import pytest
import redis
from ratelimit_helpers import MakeKey

from evalfleet.workers.ratelimit import RateLimiter, tuning


def test_a_429_that_says_the_limit_sets_the_rate_just_under_it_at_once(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given an adaptive limit starting 5x above the provider's 600 rpm
    limiter = RateLimiter(client, make_key(), initial_rpm=3000)

    # When a 429 says the limit (x-ratelimit-limit: 10 requests per second)
    limiter.on_rate_limited(retry_after_s=None, limit_rpm=600)

    # Then one 429 brings the rate just under the limit, not one cut a second
    assert limiter.current_rpm() == pytest.approx(600 * tuning.ADVERTISED_MARGIN)
    assert limiter.snapshot()["cuts"] == 1


def test_an_advertised_limit_above_the_rate_does_not_raise_it(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given an adaptive limit at 300 rpm, and a fixed one at 120 rpm
    adaptive = RateLimiter(client, make_key(), initial_rpm=300)
    fixed = RateLimiter(client, make_key(), rpm=120, adaptive=False)

    # When 429s advertise a limit of 6000 rpm, or 60 rpm
    adaptive.on_rate_limited(retry_after_s=None, limit_rpm=6000)
    fixed.on_rate_limited(retry_after_s=None, limit_rpm=60)

    # Then the adaptive one only takes its usual cut, and the user's fixed rate stands
    assert adaptive.current_rpm() == pytest.approx(300 * tuning.DECREASE_FACTOR)
    assert fixed.current_rpm() == 120


def test_the_rate_never_grows_past_an_advertised_limit(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given an adaptive limit that a 429 set just under the provider's 600 rpm
    limiter = RateLimiter(client, make_key(), initial_rpm=3000)
    limiter.on_rate_limited(retry_after_s=None, limit_rpm=600)

    # When callers keep waiting on it and requests keep succeeding, long after the cut
    client.hset(limiter.key.redis_key(), "last_cut", 0)
    for _ in range(200):
        limiter.reserve()
        limiter.on_success()

    # Then it stays at the stated limit
    assert limiter.current_rpm() == pytest.approx(600 * tuning.ADVERTISED_MARGIN)


def test_a_success_that_states_the_limit_brings_the_rate_under_it_before_any_429(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given an adaptive limit starting at 3000 rpm
    limiter = RateLimiter(client, make_key(), initial_rpm=3000)

    # When an answer comes back with x-ratelimit-limit: 10 (per second)
    limiter.on_success(limit_rpm=600)

    # Then the rate is just under 600 rpm at once, with no 429 and no cut
    assert limiter.current_rpm() == pytest.approx(600 * tuning.ADVERTISED_MARGIN)
    assert limiter.snapshot()["cuts"] == 0
