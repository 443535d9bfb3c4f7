"""Slots reserved ahead: at a high rate one round trip reserves a span's worth of slots,
which a 429 or the passing of time gives up (docs/architecture.md, "Rate limiter").

Assertions are on reserved slots (Redis' clock), not on measured sleeps: this machine
is shared and noisy. Every test uses its own key, deleted afterwards (conftest.py).
"""

from __future__ import annotations

import threading
import time

import pytest
import redis
from ratelimit_helpers import MakeKey, count_reservation_calls, gaps

from evalfleet.workers.ratelimit import RateLimiter, tuning


def test_at_a_high_rate_one_round_trip_reserves_a_spans_worth_of_slots(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given a fixed limit of 60,000 rpm (a slot every millisecond)
    limiter = RateLimiter(client, make_key(), rpm=60_000, adaptive=False)
    calls = count_reservation_calls(limiter)

    # When one caller acquires 64 times
    for _ in range(64):
        limiter.acquire()

    # Then it asked Redis once per batch of slots, not once per request
    per_call = min(tuning.MAX_BATCH, int(tuning.BATCH_SPAN_S / 0.001))
    assert per_call > 1
    assert len(calls) <= 64 // per_call + 1


def test_threads_that_ask_at_once_share_one_round_trip(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given a limit of 600,000 rpm (a span holds more than a batch) and 64 threads, as many
    # as a worker's requests in flight that come back together
    limiter = RateLimiter(client, make_key(), rpm=600_000, adaptive=False)
    calls = count_reservation_calls(limiter)
    start = threading.Barrier(64)

    def ask() -> None:
        start.wait()
        limiter.acquire()

    # When they all acquire at the same instant
    threads = [threading.Thread(target=ask) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then one batch's round trip served them, not one round trip per thread
    assert len(calls) <= 64 // tuning.MAX_BATCH + 1


def test_slots_reserved_in_batches_by_two_workers_never_overlap(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given two workers on the same key at 60,000 rpm
    key = make_key()
    first = RateLimiter(client, key, rpm=60_000, adaptive=False)
    second = RateLimiter(client, key, rpm=60_000, adaptive=False)

    # When they reserve batches in turns
    slots = [
        r.slot
        for i in range(6)
        for r in (first if i % 2 else second).reserve_slots(0, tuning.MAX_BATCH)
    ]

    # Then every slot is its own, one millisecond after the previous one
    assert len(slots) > 6
    assert gaps(slots) == pytest.approx([0.001] * (len(slots) - 1), abs=1e-5)


def test_at_a_modest_rate_every_request_reserves_its_own_slot(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given a fixed limit of 600 rpm: one slot every 0.1 s, longer than a batch's span
    limiter = RateLimiter(client, make_key(), rpm=600, adaptive=False, horizon_s=5.0)

    # When a batch is asked for
    slots = limiter.reserve_slots(0, tuning.MAX_BATCH)

    # Then only one slot is reserved: no process holds slots another could use now
    assert len(slots) == 1


def test_a_token_limit_reserves_one_slot_per_call(client: redis.Redis, make_key: MakeKey) -> None:
    # Given a high request rate but a tokens-per-minute limit (each request costs its own)
    limiter = RateLimiter(client, make_key(), rpm=60_000, tpm=6_000_000, adaptive=False)

    # When a batch is asked for, then one slot comes back
    assert len(limiter.reserve_slots(100, tuning.MAX_BATCH)) == 1


def test_a_429_drops_the_slots_reserved_ahead(client: redis.Redis, make_key: MakeKey) -> None:
    # Given a worker holding slots reserved ahead at 60,000 rpm
    limiter = RateLimiter(client, make_key(), rpm=60_000, adaptive=False)
    calls = count_reservation_calls(limiter)
    limiter.acquire()
    assert len(calls) == 1

    # When a 429 with retry-after 0.3 s comes back
    limiter.on_rate_limited(retry_after_s=0.3)
    started = time.monotonic()
    limiter.acquire()

    # Then the next request asked Redis again and waited out the block
    assert len(calls) == 2
    assert time.monotonic() - started >= 0.25


def test_a_slot_reserved_ahead_and_left_unused_is_not_sent_late(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given a worker holding slots reserved ahead at 60,000 rpm
    limiter = RateLimiter(client, make_key(), rpm=60_000, adaptive=False)
    calls = count_reservation_calls(limiter)
    limiter.acquire()

    # When its next request comes long after those slots
    time.sleep(3 * tuning.BATCH_SPAN_S)
    limiter.acquire()

    # Then it reserved a fresh slot instead of sending on a stale one
    assert len(calls) == 2
