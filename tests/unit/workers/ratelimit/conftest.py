"""Fixtures of the rate limiter's tests: a real Redis and a fresh limit key per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from ratelimit_helpers import MODEL, REDIS_URL, MakeKey

from evalfleet.workers.ratelimit import LimitKey, tuning


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
    """Cuts allowed back to back, so tests need not wait out the one-second window.
    Patched in `tuning`, which the limiter reads at every call."""
    monkeypatch.setattr(tuning, "CUT_WINDOW_S", 0.0)
