"""Spacing: slots 60 / rate apart on Redis' clock, reserved at most a horizon ahead, and
acquire's sleeps and timeout (docs/architecture.md, "Rate limiter").

Assertions are on reserved slots (Redis' clock), not on measured sleeps: this machine
is shared and noisy. Every test uses its own key, deleted afterwards (conftest.py).
"""

from __future__ import annotations

import time

import pytest
import redis
from ratelimit_helpers import MODEL, MakeKey, gaps

from evalfleet.simulator.ratelimit import RateLimiter as SimBucket
from evalfleet.workers.ratelimit import LimitKey, RateLimiter, RateLimitTimeout


def test_a_fixed_600_rpm_limit_spaces_requests_a_tenth_of_a_second_apart(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given a fixed limit of 600 requests per minute, reservable 5 s ahead
    limiter = RateLimiter(client, make_key(), rpm=600, adaptive=False, horizon_s=5.0)

    # When 20 requests reserve their slots at once
    reservations = [limiter.reserve() for _ in range(20)]

    # Then all are granted, the first at once, each one 0.1 s after the previous
    assert all(r.granted for r in reservations)
    assert reservations[0].wait_s < 0.05
    assert gaps([r.slot for r in reservations]) == pytest.approx([0.1] * 19, abs=1e-5)


def test_slots_at_the_providers_rate_never_trip_its_one_second_token_bucket(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given the simulator's bucket (600/min, burst of one second) and a limiter at 600 rpm
    limiter = RateLimiter(client, make_key(), rpm=600, adaptive=False, horizon_s=5.0)
    slots = [limiter.reserve().slot for _ in range(40)]
    clock = [slots[0] - 60.0]  # the bucket is full when the first request arrives
    bucket = SimBucket({MODEL: 600}, clock=lambda: clock[0])

    # When the requests reach it at their slots (4 s, four times its burst)
    decisions = []
    for slot in slots:
        clock[0] = slot
        decisions.append(bucket.acquire(MODEL))

    # Then none is refused, and the bucket never ran low
    assert all(d is not None and d.allowed for d in decisions)
    assert min(d.remaining for d in decisions if d is not None) >= 8


def test_slots_further_ahead_than_the_horizon_are_not_handed_out(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given a fixed 600 rpm limit that reserves at most one second ahead
    limiter = RateLimiter(client, make_key(), rpm=600, adaptive=False, horizon_s=1.0)

    # When 30 requests ask at once (3 s of slots)
    reservations = [limiter.reserve() for _ in range(30)]

    # Then those within one second get a slot, the rest are told to ask again soon
    granted = [r for r in reservations if r.granted]
    refused = [r for r in reservations if not r.granted]
    assert len(granted) >= 10 and refused
    assert all(r.wait_s <= 1.0 + 1e-6 for r in granted)
    assert all(0.0 <= r.wait_s <= 0.1 + 1e-6 for r in refused)


def test_acquire_sleeps_until_its_slot_and_returns_the_wait(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given a fixed limit of 1200 rpm (one request per 0.05 s)
    limiter = RateLimiter(client, make_key(), rpm=1200, adaptive=False)

    # When one caller acquires five times in a row
    started = time.monotonic()
    waits = [limiter.acquire() for _ in range(5)]
    elapsed = time.monotonic() - started

    # Then the first goes at once and the five span at least four intervals
    assert waits[0] < 0.05
    assert elapsed >= 4 * 0.05 - 0.02
    assert elapsed < 5.0  # generous: the machine is shared


def test_tokens_per_minute_space_requests_by_their_token_cost(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given a limit of 60,000 tokens per minute (1,000 per second) and none on requests
    limiter = RateLimiter(client, make_key(), tpm=60_000, adaptive=False, horizon_s=5.0)

    # When requests of 500, 1,000 and 10 tokens reserve
    slots = [limiter.reserve(tokens).slot for tokens in (500, 1000, 10)]

    # Then each waits for the tokens of the previous ones
    assert gaps(slots) == pytest.approx([0.5, 1.0], abs=1e-5)


def test_acquire_gives_up_after_its_timeout(client: redis.Redis, make_key: MakeKey) -> None:
    # Given a limit blocked for 10 s by a 429
    limiter = RateLimiter(client, make_key(), initial_rpm=600)
    limiter.on_rate_limited(retry_after_s=10.0)

    # When a caller will wait at most 0.2 s
    # Then it is told so at once, instead of sleeping past its deadline
    started = time.monotonic()
    with pytest.raises(RateLimitTimeout):
        limiter.acquire(timeout=0.2)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "settings",
    [{"rpm": 0}, {"tpm": -1.0}, {"min_rpm": 10.0, "max_rpm": 5.0}, {"horizon_s": 0.0}],
)
def test_nonsense_settings_are_refused(client: redis.Redis, settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(client, LimitKey("http://test.invalid", MODEL), **settings)  # type: ignore[arg-type]
