"""Keys: one budget per (base URL, model), shared by every worker; key names without
credentials (docs/architecture.md, D7 and D9); state that expires by itself.

Assertions are on reserved slots (Redis' clock), not on measured sleeps: this machine
is shared and noisy. Every test uses its own key, deleted afterwards (conftest.py).
"""

from __future__ import annotations

import pytest
import redis
from ratelimit_helpers import REDIS_URL, MakeKey, gaps

from evalfleet.simulator.config import SIM_FINETUNED
from evalfleet.workers.ratelimit import LimitKey, RateLimiter, tuning


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


def test_keys_expire_after_an_hour_of_silence(client: redis.Redis, make_key: MakeKey) -> None:
    # Given a limit that has been used and told about a 429
    key = make_key()
    limiter = RateLimiter(client, key)
    limiter.acquire()
    limiter.on_rate_limited(retry_after_s=0.1)

    # When its Redis state is inspected
    ttl = client.ttl(key.redis_key())

    # Then it will disappear by itself
    assert 0 < ttl <= tuning.KEY_TTL_S


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
