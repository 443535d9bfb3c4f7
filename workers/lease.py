"""The leases of the items a worker process holds, renewed together while their deliveries
work."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.db import session_scope
from evalfleet.schema.lifecycle import renew_lease

logger = logging.getLogger(__name__)


class LeaseRenewer:
    """One thread per process renews the lease of every item the process holds (waiting on
    the rate limiter included) in one statement every third of a lease, so a live holder
    never loses it and a dead one is noticed within one lease. A thread and a transaction per
    item cost a 5-question item as much as a 15-turn one (bench/per_item.py)."""

    def __init__(self, sessions: sessionmaker[Session], lease_s: float) -> None:
        self.sessions, self.lease_s = sessions, lease_s
        self._held: Counter[int] = Counter()  # item -> deliveries of this process holding it
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(self, item_id: int) -> Iterator[None]:
        """Renew the item's lease until the block ends."""
        with self._lock:
            self._held[item_id] += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="leases", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held[item_id] -= 1
                if self._held[item_id] <= 0:
                    del self._held[item_id]

    def held(self) -> list[int]:
        with self._lock:
            return sorted(self._held)

    def renew(self) -> None:
        """One renewal of every held item; a database error waits for the next beat."""
        item_ids = self.held()
        if not item_ids:
            return
        try:
            with session_scope(self.sessions) as session:
                renew_lease(session, item_ids, self.lease_s)
        except DBAPIError:  # the database is restarting: renew at the next beat
            logger.warning("leases of %s items not renewed (database error)", len(item_ids))

    def _loop(self) -> None:
        stop = threading.Event()  # never set: the thread lives as long as its process
        while not stop.wait(self.lease_s / 3):
            self.renew()
