"""A throwaway PostgreSQL database for a bench or a test, and waiting out a server restart."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg

RESTART_WAIT_S = 60.0  # the chaos bench restarts the machine's cluster under everyone


@dataclass(frozen=True)
class ScratchDatabase:
    name: str
    libpq_url: str  # for psycopg

    @property
    def url(self) -> str:
        """The SQLAlchemy URL (psycopg 3 driver), as EVALFLEET_DATABASE_URL takes it."""
        return self.libpq_url.replace("postgresql://", "postgresql+psycopg://", 1)


def _while_restarting(action: Callable[[], None], timeout: float, pause_s: float) -> None:
    """`action`, tried again while the server cannot be reached (a restart), up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(pause_s)


def wait_for_postgres(admin_url: str, timeout: float = RESTART_WAIT_S) -> None:
    _while_restarting(lambda: psycopg.connect(admin_url, connect_timeout=1).close(), timeout, 0.2)


def _admin(admin_url: str, sql: str) -> None:
    """One statement as the admin user, retried while the server restarts."""

    def execute() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.encode())

    _while_restarting(execute, RESTART_WAIT_S, 1.0)


def database_url(admin_url: str, name: str) -> str:
    """`admin_url` (libpq) naming the database `name` instead, its query kept."""
    base, _, query = admin_url.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str, keep: bool = False) -> Iterator[ScratchDatabase]:
    """A new, empty database named `prefix` and a random suffix, on the server of `admin_url`
    (a libpq URL allowed to create databases); dropped on exit unless `keep`."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield ScratchDatabase(name, database_url(admin_url, name))
    finally:
        if not keep:
            _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
