"""The lease of an item held by a delivery, renewed while the delivery works."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.db import session_scope
from evalfleet.schema.lifecycle import renew_lease

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the item's lease from a background thread while the delivery works (waiting on
    the rate limiter included), so a live holder never loses it and a dead one is noticed
    within one lease."""

    def __init__(self, sessions: sessionmaker[Session], item_id: int, lease_s: float) -> None:
        self.sessions, self.item_id, self.lease_s = sessions, item_id, lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{item_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                with session_scope(self.sessions) as session:
                    renew_lease(session, self.item_id, self.lease_s)
            except DBAPIError:  # the database is restarting: renew at the next beat
                logger.warning("item %s: lease not renewed (database error)", self.item_id)
