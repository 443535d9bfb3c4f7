"""Per-process resources, made on first use: one engine, one API pool per model, one API client
per thread and base URL, the bound on the API requests in flight, the answer writer and the
lease renewer."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import together
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.db import make_engine, make_sessionmaker
from evalfleet.schema.settings import Settings, get_settings
from evalfleet.workers.api import make_client
from evalfleet.workers.group_commit import GroupCommitWriter
from evalfleet.workers.lease import LeaseRenewer
from evalfleet.workers.ratelimit import LimitKey, RateLimiter
from evalfleet.workers.requesting import Limiter
from evalfleet.workers.retry_policy import RetryPolicy


class InFlightBound:
    """At most `size` holders at once (a context manager), like a BoundedSemaphore, but its
    waits are in C: threading's Python-level semaphore cost 3% of a worker's CPU here
    (bench/throughput.py), taken and given back around every API request."""

    def __init__(self, size: int) -> None:
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(size):
            self._tokens.put(None)

    def __enter__(self) -> None:
        self._tokens.get()

    def __exit__(self, *_exc: object) -> None:
        self._tokens.put(None)


@dataclass
class Resources:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    concurrency: int
    redis: Redis | None
    _limiters: dict[tuple[LimitKey, float | None, float | None], RateLimiter] = field(
        default_factory=dict
    )
    _executors: dict[tuple[str | None, str], ThreadPoolExecutor] = field(default_factory=dict)
    _threads: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Held only around the HTTP call, after the rate limiter granted a slot: a model waiting
    # on its limit holds none, and the process never has more than `concurrency` in flight.
    in_flight: InFlightBound = field(init=False)
    writer: GroupCommitWriter = field(init=False)
    leases: LeaseRenewer = field(init=False)

    def __post_init__(self) -> None:
        self.in_flight = InFlightBound(self.concurrency)
        self.writer = GroupCommitWriter(self.sessions)
        self.leases = LeaseRenewer(self.sessions, self.settings.lease_s)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.of(self.settings)

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
        """This thread's client. One client shared by 64 threads costs more CPU per request
        (1.9 against 1.65 ms here) and queues them on its connection pool's lock: a thread
        makes one request at a time, so its own client with a small pool never waits."""
        clients: dict[str | None, together.Together] = self._threads.__dict__.setdefault(
            "clients", {}
        )
        if base_url not in clients:
            clients[base_url] = make_client(self.settings, base_url, CONNECTIONS_PER_THREAD)
        return clients[base_url]


CONNECTIONS_PER_THREAD = 2  # one in use, one closing after a dropped connection
_resources: Resources | None = None
_resources_lock = threading.Lock()


def get_resources() -> Resources:
    global _resources
    with _resources_lock:
        if _resources is None:
            settings = get_settings()
            # In-flight API requests per process are bounded by the concurrency.
            concurrency = max(1, settings.worker_concurrency)
            # The task threads write; API threads never touch the database.
            engine = make_engine(settings.effective_database_url, pool_size=concurrency + 2)
            _resources = Resources(
                settings=settings,
                engine=engine,
                sessions=make_sessionmaker(engine),
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
