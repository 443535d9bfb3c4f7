"""The periodic sweep: every worker offers, one per interval (a Redis lock) reconciles every
active run, so lost messages are re-sent without anyone typing `evalfleet reconcile`."""

from __future__ import annotations

import logging
import os
import threading

from celery import Celery
from redis import Redis

from workers.reconcile import active_run_ids, reconcile_run
from workers.resources import get_resources

logger = logging.getLogger(__name__)
LOCK_KEY = "evalfleet:sweep:{queue}"
# Held while sweeping and across fork(): a prefork child must never be born while the
# sweeper thread holds a database-pool or Redis lock, or the child waits on it forever.
_sweeping = threading.Lock()
os.register_at_fork(
    before=_sweeping.acquire,
    after_in_parent=_sweeping.release,
    after_in_child=_sweeping.release,
)


def sweep_once(celery: Celery, redis: Redis, queue: str, interval_s: float) -> int:
    """Reconcile every active run if this worker holds the lock; returns items re-sent."""
    if not redis.set(LOCK_KEY.format(queue=queue), "1", nx=True, ex=max(1, int(interval_s))):
        return 0
    resources = get_resources()
    resent = 0
    for run_id in active_run_ids(resources.sessions):
        resent += reconcile_run(celery, resources.sessions, run_id, queue).resent
    return resent


def start_sweeper(celery: Celery, interval_s: float) -> threading.Thread | None:
    resources = get_resources()
    if resources.redis is None or interval_s <= 0:
        return None
    queue = resources.settings.queue
    redis = resources.redis
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                with _sweeping:
                    resent = sweep_once(celery, redis, queue, interval_s)
                if resent:
                    logger.warning("sweep: re-sent %s lost items", resent)
            except Exception:  # the sweep must outlive a broker or database restart
                logger.exception("sweep failed; trying again in %.0fs", interval_s)

    thread = threading.Thread(target=loop, name="evalfleet-sweep", daemon=True)
    thread.start()
    return thread
