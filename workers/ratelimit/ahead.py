"""Slots reserved ahead: one Redis call at a high rate reserves a process several slots,
which its later callers take without a round trip (docs/architecture.md, "Rate limiter")."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable

from evalfleet.workers.ratelimit import tuning
from evalfleet.workers.ratelimit.reservation import Reservation


class SlotsAhead:
    """This process's slots reserved ahead, each with its local send time; thread-safe."""

    def __init__(self) -> None:
        self._slots: deque[tuple[float, Reservation]] = deque()
        self._lock = threading.Lock()

    def keep(self, reservations: Iterable[Reservation]) -> None:
        """Keep slots just handed out, their waits counted from now."""
        received = time.monotonic()
        with self._lock:
            self._slots.extend((received + r.wait_s, r) for r in reservations)

    def take(self) -> Reservation | None:
        """The next slot reserved ahead, its wait counted from now; None when there is none.
        A slot more than a batch's span in the past is dropped: sent late, it would join a
        burst."""
        with self._lock:
            now = time.monotonic()
            while self._slots:
                send_at, reservation = self._slots.popleft()
                if send_at >= now - tuning.BATCH_SPAN_S:
                    r = reservation
                    return Reservation(r.granted, max(0.0, send_at - now), r.slot, r.reserved_at)
        return None

    def drop(self) -> None:
        """Give every slot up: they were spaced for a rate or a block that no longer holds."""
        with self._lock:
            self._slots.clear()
