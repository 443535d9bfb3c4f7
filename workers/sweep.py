"""The periodic sweep: every worker offers, one per interval (a Redis lock) reconciles every
active run, so lost messages are re-sent without anyone typing `evalfleet reconcile`."""

from __future__ import annotations

import logging
import threading

from celery import Celery
from redis import Redis

from evalfleet.schema.db import make_engine, make_sessionmaker
from evalfleet.schema.settings import Settings, get_settings
from evalfleet.workers.reconcile import active_run_ids, reconcile_run

logger = logging.getLogger(__name__)
LOCK_KEY = "evalfleet:sweep:{queue}"


def sweep_once(celery: Celery, settings: Settings, interval_s: float) -> int:
    """Reconcile every active run if this worker holds the lock; returns items re-sent.
    It uses its own short-lived engine and Redis client, never the task resources: the
    sweeper thread lives in the prefork parent, and a child forked while a shared pool's lock
    was held would wait on it forever."""
    assert settings.broker_url is not None
    redis = Redis.from_url(settings.broker_url)
    engine = make_engine(settings.effective_database_url)
    try:
        lock = LOCK_KEY.format(queue=settings.queue)
        if not redis.set(lock, "1", nx=True, ex=max(1, int(interval_s))):
            return 0
        sessions = make_sessionmaker(engine)
        return sum(
            reconcile_run(celery, sessions, run_id, settings.queue).resent
            for run_id in active_run_ids(sessions)
        )
    finally:
        engine.dispose()
        redis.close()


def start_sweeper(celery: Celery, interval_s: float) -> threading.Thread | None:
    settings = get_settings()
    if not settings.broker_url or interval_s <= 0:
        return None
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                resent = sweep_once(celery, settings, interval_s)
                if resent:
                    logger.warning("sweep: re-sent %s lost items", resent)
            except Exception:  # the sweep must outlive a broker or database restart
                logger.exception("sweep failed; trying again in %.0fs", interval_s)

    thread = threading.Thread(target=loop, name="evalfleet-sweep", daemon=True)
    thread.start()
    return thread
