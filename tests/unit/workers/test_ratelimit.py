"""The cluster-wide rate limiter, against a real Redis (DESIGN.md point 7).

Assertions are on reserved slots (Redis' clock), not on measured sleeps: this machine
is shared and noisy. Every test uses its own key, deleted afterwards.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from evalfleet.simulator.config import SIM_BASE, SIM_FINETUNED
from evalfleet.simulator.ratelimit import RateLimiter as SimBucket
from evalfleet.workers import ratelimit
from evalfleet.workers.ratelimit import LimitKey, RateLimiter, RateLimitTimeout

REDIS_URL = os.environ.get("EVALFLEET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MODEL = SIM_BASE

MakeKey = Callable[..., LimitKey]


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    """A Redis client; skipped when Redis does not answer, except under CI=true."""
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=5)
    try:
        connection.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis at {REDIS_URL} does not answer (CI=true): {exc}")
        pytest.skip(f"Redis at {REDIS_URL} does not answer: {exc}")
    yield connection
    connection.close()


@pytest.fixture
def make_key(client: redis.Redis) -> Iterator[MakeKey]:
    """Unique limit keys for this test, deleted afterwards."""
    made: list[LimitKey] = []

    def make(model: str = MODEL, base_url: str | None = None) -> LimitKey:
        key = LimitKey(base_url or f"http://test.invalid/{uuid.uuid4().hex}", model)
        made.append(key)
        return key

    yield make
    if made:
        client.delete(*(key.redis_key() for key in made))


@pytest.fixture
def no_cut_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cuts allowed back to back, so tests need not wait out the one-second window."""
    monkeypatch.setattr(ratelimit, "CUT_WINDOW_S", 0.0)


def gaps(slots: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(slots, slots[1:], strict=False)]


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


def test_two_workers_on_the_same_key_share_one_budget(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given two workers, each with its own client and limiter, on the same model
    key = make_key()
    other_client = redis.Redis.from_url(REDIS_URL)
    first = RateLimiter(client, key, rpm=600, adaptive=False, horizon_s=5.0)
    second = RateLimiter(other_client, key, rpm=600, adaptive=False, horizon_s=5.0)

    # When they reserve in turns
    slots = [(first if i % 2 else second).reserve().slot for i in range(10)]
    other_client.close()

    # Then together they get one slot per 0.1 s, not one each
    assert gaps(slots) == pytest.approx([0.1] * 9, abs=1e-5)


def test_different_models_and_base_urls_never_share_a_budget(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given three limits: one model, another model at the same URL, the same model elsewhere
    base = make_key()
    keys = [base, make_key(model=SIM_FINETUNED, base_url=base.base_url), make_key()]
    limiters = [RateLimiter(client, key, rpm=6, adaptive=False) for key in keys]

    # When each one's budget is used by one request
    first = [limiter.reserve() for limiter in limiters]
    second = limiters[0].reserve()

    # Then each key granted its own first request at once, and only the used one must wait
    assert all(r.granted and r.wait_s < 0.05 for r in first)
    assert not second.granted and second.wait_s > 5.0
    assert len({key.redis_key() for key in keys}) == 3


def test_the_redis_key_names_the_model_but_not_the_base_url() -> None:
    # Given a key whose URL carries credentials
    key = LimitKey("https://user:secret@api.together.xyz", "meta-llama/Llama-3-8b")

    # When its Redis key is built
    name = key.redis_key()

    # Then it is the fixed prefix, 12 hex digits of the URL's hash and the model
    prefix, digest, model = name.rsplit(":", 2)
    assert prefix == "evalfleet:rl"
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert model == "meta-llama/Llama-3-8b"
    assert "secret" not in name


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
    assert bystander.current_rpm() == pytest.approx(600 * ratelimit.DECREASE_FACTOR)
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
    assert limiter.current_rpm() == pytest.approx(600 * ratelimit.DECREASE_FACTOR)


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
    assert limiter.current_rpm() == pytest.approx(600 * ratelimit.DECREASE_FACTOR)


@pytest.mark.usefixtures("no_cut_window")
def test_a_fresh_429_right_after_a_cut_cuts_deeper(client: redis.Redis, make_key: MakeKey) -> None:
    # Given an adaptive limit just cut once after a 429
    limiter = RateLimiter(client, make_key(), initial_rpm=600)
    limiter.on_rate_limited(retry_after_s=None)

    # When a request sent after that cut is refused at once as well
    limiter.acquire()
    limiter.on_rate_limited(retry_after_s=None)

    # Then the rate was far too high: the second cut is the deep one
    expected = 600 * ratelimit.DECREASE_FACTOR * ratelimit.DEEP_DECREASE_FACTOR
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
    assert 600 < grown <= 600 + 10 * 60 * ratelimit.FAST_GROWTH_PER_S
    assert grown == pytest.approx(600 + 10 * 60 * ratelimit.SLOW_GROWTH_PER_S, rel=0.01)
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
    assert limiter.current_rpm() == pytest.approx(600 * ratelimit.DECREASE_FACTOR)


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
    assert 100 < second.snapshot()["blocked_for_s"] <= ratelimit.MAX_BLOCK_S


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


def test_keys_expire_after_an_hour_of_silence(client: redis.Redis, make_key: MakeKey) -> None:
    # Given a limit that has been used and told about a 429
    key = make_key()
    limiter = RateLimiter(client, key)
    limiter.acquire()
    limiter.on_rate_limited(retry_after_s=0.1)

    # When its Redis state is inspected
    ttl = client.ttl(key.redis_key())

    # Then it will disappear by itself
    assert 0 < ttl <= ratelimit.KEY_TTL_S


def test_a_client_that_decodes_responses_works_the_same(make_key: MakeKey) -> None:
    # Given a client created with decode_responses=True (strings instead of bytes)
    decoding = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=1)
    try:
        decoding.ping()
    except redis.RedisError:
        pytest.skip("Redis does not answer")
    limiter = RateLimiter(decoding, make_key(), initial_rpm=300)

    # When it is used
    reservation = limiter.reserve()
    limiter.on_success()
    state = limiter.snapshot()
    decoding.close()

    # Then the results are the same numbers
    assert reservation.granted
    assert state["rpm"] == pytest.approx(300)
    assert state["successes"] == 1


@pytest.mark.parametrize(
    "settings",
    [{"rpm": 0}, {"tpm": -1.0}, {"min_rpm": 10.0, "max_rpm": 5.0}, {"horizon_s": 0.0}],
)
def test_nonsense_settings_are_refused(client: redis.Redis, settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(client, LimitKey("http://test.invalid", MODEL), **settings)  # type: ignore[arg-type]


def test_a_429_that_says_the_limit_sets_the_rate_just_under_it_at_once(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given an adaptive limit starting 5x above the provider's 600 rpm
    limiter = RateLimiter(client, make_key(), initial_rpm=3000)

    # When a 429 says the limit (x-ratelimit-limit: 10 requests per second)
    limiter.on_rate_limited(retry_after_s=None, limit_rpm=600)

    # Then one 429 brings the rate just under the limit, not one cut a second
    assert limiter.current_rpm() == pytest.approx(600 * ratelimit.ADVERTISED_MARGIN)
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
    assert adaptive.current_rpm() == pytest.approx(300 * ratelimit.DECREASE_FACTOR)
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
    assert limiter.current_rpm() == pytest.approx(600 * ratelimit.ADVERTISED_MARGIN)


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
    spacing = 60 / (60 * ratelimit.DECREASE_FACTOR)
    assert limiter.reserve().slot - first.slot == pytest.approx(spacing, abs=0.01)


def test_a_success_that_states_the_limit_brings_the_rate_under_it_before_any_429(
    client: redis.Redis, make_key: MakeKey
) -> None:
    # Given an adaptive limit starting at 3000 rpm
    limiter = RateLimiter(client, make_key(), initial_rpm=3000)

    # When an answer comes back with x-ratelimit-limit: 10 (per second)
    limiter.on_success(limit_rpm=600)

    # Then the rate is just under 600 rpm at once, with no 429 and no cut
    assert limiter.current_rpm() == pytest.approx(600 * ratelimit.ADVERTISED_MARGIN)
    assert limiter.snapshot()["cuts"] == 0


def count_reservation_calls(limiter: RateLimiter) -> list[int]:
    """Counts the limiter's reserve round trips to Redis (one element per call)."""
    calls: list[int] = []
    script = limiter._reserve

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return script(*args, **kwargs)

    limiter._reserve = counted  # type: ignore[assignment]
    return calls


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
    per_call = min(ratelimit.MAX_BATCH, int(ratelimit.BATCH_SPAN_S / 0.001))
    assert per_call > 1
    assert len(calls) <= 64 // per_call + 1


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
        for r in (first if i % 2 else second).reserve_slots(0, ratelimit.MAX_BATCH)
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
    slots = limiter.reserve_slots(0, ratelimit.MAX_BATCH)

    # Then only one slot is reserved: no process holds slots another could use now
    assert len(slots) == 1


def test_a_token_limit_reserves_one_slot_per_call(client: redis.Redis, make_key: MakeKey) -> None:
    # Given a high request rate but a tokens-per-minute limit (each request costs its own)
    limiter = RateLimiter(client, make_key(), rpm=60_000, tpm=6_000_000, adaptive=False)

    # When a batch is asked for, then one slot comes back
    assert len(limiter.reserve_slots(100, ratelimit.MAX_BATCH)) == 1


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
    time.sleep(3 * ratelimit.BATCH_SPAN_S)
    limiter.acquire()

    # Then it reserved a fresh slot instead of sending on a stale one
    assert len(calls) == 2
