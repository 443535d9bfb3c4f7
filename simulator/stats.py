"""Request counters behind GET /sim/stats: per model, per status, per injected fault, per
sampling seed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

__all__ = ["SimStats"]


class SimStats:
    """Thread-safe counters of chat-completion requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._started = time.monotonic()
            self._requests = 0
            self._by_model: Counter[str] = Counter()
            self._by_status: Counter[str] = Counter()
            self._by_model_status: dict[str, Counter[str]] = {}
            self._faults: Counter[str] = Counter()
            self._by_seed: Counter[str] = Counter()  # "none": a request without a seed
            self._rate_limited = 0
            self._in_flight = 0
            self._max_in_flight = 0

    def begin(self) -> None:
        """A chat request arrived (counts concurrency)."""
        with self._lock:
            self._requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def finish(
        self,
        model: str | None,
        status: int | None,
        fault: str | None = None,
        rate_limited: bool = False,
        seed: int | None = None,
    ) -> None:
        """The request ended with `status` (None: connection dropped, no answer)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            status_key = "none" if status is None else str(status)
            self._by_status[status_key] += 1
            if model is not None:
                self._by_model[model] += 1
                self._by_seed["none" if seed is None else str(seed)] += 1
                self._by_model_status.setdefault(model, Counter())[status_key] += 1
            if fault is not None:
                self._faults[fault] += 1
            if rate_limited:
                self._rate_limited += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of the counters."""
        with self._lock:
            return {
                "requests_total": self._requests,
                "by_model": dict(self._by_model),
                "by_status": dict(self._by_status),
                "by_model_status": {m: dict(c) for m, c in self._by_model_status.items()},
                "faults": dict(self._faults),
                "by_seed": dict(self._by_seed),
                "rate_limited": self._rate_limited,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "uptime_s": round(time.monotonic() - self._started, 3),
            }
