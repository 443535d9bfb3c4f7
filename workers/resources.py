"""Per-process resources: one engine and one API client per base URL, made on first use."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import together
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from schema.db import make_engine, make_sessionmaker
from schema.settings import Settings, get_settings
from workers.api import make_client
from workers.ratelimit import LimitKey, RateLimiter
from workers.requesting import Limiter


@dataclass
class Resources:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    connections: int
    concurrency: int
    redis: Redis | None
    _limiters: dict[tuple[LimitKey, float | None, float | None], RateLimiter] = field(
        default_factory=dict
    )
    _executors: dict[tuple[str | None, str], ThreadPoolExecutor] = field(default_factory=dict)
    _clients: dict[str | None, together.Together] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def limiter(
        self, base_url: str | None, model: str, rpm: float | None, tpm: float | None
    ) -> Limiter | None:
        """The cluster-wide limiter of (base URL, model), kept in the broker's Redis."""
        if self.redis is None:
            return None
        key = LimitKey(base_url or "together", model)
        with self._lock:
            if (key, rpm, tpm) not in self._limiters:
                self._limiters[(key, rpm, tpm)] = RateLimiter(
                    self.redis,
                    key,
                    rpm=rpm,
                    tpm=tpm,
                    adaptive=rpm is None,
                    initial_rpm=self.settings.initial_rpm,
                )
            return self._limiters[(key, rpm, tpm)]

    def executor(self, base_url: str | None, model: str) -> ThreadPoolExecutor:
        """One API pool per (base URL, model): turns of one model waiting on its rate limit
        never hold the threads another model could use now."""
        with self._lock:
            key = (base_url, model)
            if key not in self._executors:
                self._executors[key] = ThreadPoolExecutor(
                    self.concurrency, thread_name_prefix=f"api-{len(self._executors)}"
                )
            return self._executors[key]

    def client(self, base_url: str | None) -> together.Together:
        with self._lock:
            if base_url not in self._clients:
                self._clients[base_url] = make_client(self.settings, base_url, self.connections)
            return self._clients[base_url]


_resources: Resources | None = None
_resources_lock = threading.Lock()


def get_resources() -> Resources:
    global _resources
    with _resources_lock:
        if _resources is None:
            settings = get_settings()
            engine = make_engine(settings.effective_database_url)
            # In-flight API requests per process and model are bounded by the concurrency.
            concurrency = max(1, settings.worker_concurrency)
            _resources = Resources(
                settings=settings,
                engine=engine,
                sessions=make_sessionmaker(engine),
                # Two models' pools share one client per base URL.
                connections=2 * concurrency + 4,
                concurrency=concurrency,
                redis=Redis.from_url(settings.broker_url) if settings.broker_url else None,
            )
        return _resources


def reset_after_fork() -> None:
    """A prefork child must not share its parent's sockets: new pool, new HTTP clients. Its
    locks are new too: a lock some parent thread (the sweeper) held at fork stays held."""
    global _resources, _resources_lock
    _resources_lock = threading.Lock()
    if _resources is not None:
        _resources.engine.dispose(close=False)
    _resources = None
