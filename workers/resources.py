"""Per-process resources: one engine and one API client per base URL, made on first use."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import together
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from schema.db import make_engine, make_sessionmaker
from schema.settings import Settings, get_settings
from workers.api import make_client


@dataclass
class Resources:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    connections: int
    _clients: dict[str | None, together.Together] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
            _resources = Resources(
                settings=settings,
                engine=engine,
                sessions=make_sessionmaker(engine),
                connections=max(8, settings.worker_concurrency + 4),
            )
        return _resources


def reset_after_fork() -> None:
    """A prefork child must not share its parent's sockets: new pool, new HTTP clients."""
    global _resources
    with _resources_lock:
        if _resources is not None:
            _resources.engine.dispose(close=False)
        _resources = None
