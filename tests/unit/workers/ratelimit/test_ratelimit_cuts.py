"""429s: the shared rate is cut (once per overload, deeper when it comes back at once, never
below the floor) and everyone waits out retry-after (docs/architecture.md, "Rate limiter").

Assertions are on reserved slots (Redis' clock), not on measured sleeps: this machine
is shared and noisy. Every test uses its own key, deleted afterwards (conftest.py).
"""

from __future__ import annotations

import threading
import time

import pytest
import redis
from ratelimit_helpers import MakeKey

from evalfleet.workers.ratelimit import RateLimiter, tuning


def test_a_429_cuts_the_rate_and_blocks_every_worker_until_retry_after(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given two workers sharing an adaptive limit that starts at 600 rpm
    key = make_key()
    reporter = RateLimiter(client, key, initial_rpm=600)
    bystander = RateLimiter(client, key, initial_rpm=600)

    # When one of them gets a 429 with retry-after 0.3 s
    reporter.on_rate_limited(retry_after_s=0.3)

    # Then the shared rate is cut by the decrease factor and the other worker must wait too
    assert bystander.current_rpm() == pytest.approx(600 * tuning.DECREASE_FACTOR)
    held_back = bystander.reserve()
    assert held_back.slot >= bystander.snapshot()["blocked_until"] > 0
    assert held_back.wait_s <= 0.3


def test_many_429s_within_one_second_cut_the_rate_once(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given an adaptive limit at 600 rpm
    limiter = RateLimiter(client, make_key(), initial_rpm=600)

    # When ten 429s from one overload arrive together
    for _ in range(10):
        limiter.on_rate_limited(retry_after_s=None)

    # Then all are counted, but the rate was cut once
    state = limiter.snapshot()
    assert state["rate_limited"] == 10
    assert state["cuts"] == 1
    assert limiter.current_rpm() == pytest.approx(600 * tuning.DECREASE_FACTOR)


@pytest.mark.usefixtures("no_cut_window")
def test_a_429_to_a_request_sent_before_the_last_cut_does_not_cut_again(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given a request sent (acquired) in a worker thread before another worker's 429 cut the rate
    key = make_key()
    limiter = RateLimiter(client, key, initial_rpm=600)
    limiter.acquire()
    RateLimiter(client, key, initial_rpm=600).on_rate_limited(retry_after_s=None)

    # When that older request comes back 429 too
    limiter.on_rate_limited(retry_after_s=None)

    # Then it is counted as a 429 but is not a new reason to slow down
    assert limiter.snapshot()["cuts"] == 1
    assert limiter.current_rpm() == pytest.approx(600 * tuning.DECREASE_FACTOR)


@pytest.mark.usefixtures("no_cut_window")
def test_a_fresh_429_right_after_a_cut_cuts_deeper(client: redis.Redis, make_key: MakeKey) -> None:
    # Given an adaptive limit just cut once after a 429
    limiter = RateLimiter(client, make_key(), initial_rpm=600)
    limiter.on_rate_limited(retry_after_s=None)

    # When a request sent after that cut is refused at once as well
    limiter.acquire()
    limiter.on_rate_limited(retry_after_s=None)

    # Then the rate was far too high: the second cut is the deep one
    expected = 600 * tuning.DECREASE_FACTOR * tuning.DEEP_DECREASE_FACTOR
    assert limiter.current_rpm() == pytest.approx(expected)
    assert limiter.snapshot()["last_429_rpm"] == pytest.approx(expected)


@pytest.mark.usefixtures("no_cut_window")
def test_the_rate_never_falls_below_min_rpm(client: redis.Redis, make_key: MakeKey) -> None:
    # Given an adaptive limit with a floor of 500 rpm
    limiter = RateLimiter(client, make_key(), initial_rpm=600, min_rpm=500)

    # When 429s keep coming
    for _ in range(5):
        limiter.on_rate_limited(retry_after_s=None)

    # Then the rate stops at the floor
    assert limiter.current_rpm() == pytest.approx(500)


def test_a_fixed_limit_ignores_successes_and_429s_but_honours_retry_after(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given a fixed 600 rpm limit
    limiter = RateLimiter(client, make_key(), rpm=600, adaptive=False)

    # When requests succeed and one is refused with retry-after 0.5 s
    for _ in range(5):
        limiter.on_success()
    limiter.on_rate_limited(retry_after_s=0.5)

    # Then the rate is unchanged, but everyone waits out the retry-after
    assert limiter.current_rpm() == 600
    assert limiter.snapshot()["cuts"] == 0
    assert limiter.reserve().slot >= limiter.snapshot()["blocked_until"] > 0


def test_retry_after_wins_over_reset_and_absurd_values_are_capped(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given two adaptive limits
    first = RateLimiter(client, make_key(), initial_rpm=600)
    second = RateLimiter(client, make_key(), initial_rpm=600)

    # When one 429 carries only x-ratelimit-reset, and another an absurd retry-after
    first.on_rate_limited(retry_after_s=None, reset_s=0.4)
    second.on_rate_limited(retry_after_s=10_000_000.0, reset_s=2.0)

    # Then the reset is used when retry-after is missing, and no block exceeds the cap
    assert 0 < first.snapshot()["blocked_for_s"] <= 0.4
    assert 100 < second.snapshot()["blocked_for_s"] <= tuning.MAX_BLOCK_S


def test_a_caller_asleep_until_its_slot_waits_out_a_block_set_meanwhile(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given a fixed 120 rpm limit whose next slot is 0.5 s away
    key = make_key()
    limiter = RateLimiter(client, key, rpm=120, adaptive=False)
    limiter.reserve()
    went_at: list[float] = []

    def send() -> None:
        limiter.acquire()
        went_at.append(time.monotonic())

    sleeper = threading.Thread(target=send)
    sleeper.start()
    time.sleep(0.1)

    # When another worker gets a 429 with retry-after 0.8 s while it sleeps
    blocked_at = time.monotonic()
    RateLimiter(client, key, rpm=120, adaptive=False).on_rate_limited(retry_after_s=0.8)
    sleeper.join(timeout=10)

    # Then the sleeper did not go at its old slot, but after the block
    assert went_at and went_at[0] - blocked_at >= 0.75


def test_a_cut_gives_up_the_slots_reserved_at_the_old_rate(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given three slots reserved ahead at 60 rpm (one a second)
    limiter = RateLimiter(client, make_key(), initial_rpm=60)
    for _ in range(3):
        limiter.reserve()

    # When a 429 cuts the rate (no retry-after)
    limiter.on_rate_limited(retry_after_s=None)

    # Then the next slot is now, not behind the abandoned ones, and the one after it is
    # spaced at the new rate
    first = limiter.reserve()
    assert first.granted and first.wait_s < 0.5
    spacing = 60 / (60 * tuning.DECREASE_FACTOR)
    assert limiter.reserve().slot - first.slot == pytest.approx(spacing, abs=0.01)
