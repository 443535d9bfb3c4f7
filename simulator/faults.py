"""Seeded fault injection and latency: what goes wrong with a request, and how slowly."""

from __future__ import annotations

import math
import random
import threading

from evalfleet.simulator.config import FAULT_KINDS, SimConfig

__all__ = ["FaultInjector"]

# Spread of the lognormal latency (sigma of the underlying normal): a long right tail.
_LOGNORMAL_SIGMA = 0.5


class FaultInjector:
    """Draws one fault kind (or none) and one latency per request, from one seeded rng.

    Threads share the rng under a lock; the order of draws across threads is not
    deterministic, but the fault counts of a run follow the configured rates.
    """

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        probabilities = config.fault_probabilities()
        self._thresholds: list[tuple[float, str]] = []
        cumulative = 0.0
        for kind in FAULT_KINDS:
            if probabilities[kind] > 0:
                cumulative += probabilities[kind]
                self._thresholds.append((cumulative, kind))

    def draw_fault(self) -> str | None:
        """A kind from FAULT_KINDS, or None for a normal answer."""
        if not self._thresholds:
            return None
        with self._lock:
            value = self._rng.random()
        for threshold, kind in self._thresholds:
            if value < threshold:
                return kind
        return None

    def latency_s(self) -> float:
        """Simulated processing time of one request, in seconds."""
        mean = self._config.latency_ms_mean / 1000.0
        if mean <= 0:
            return 0.0
        distribution = self._config.latency_distribution
        if distribution == "fixed":
            return mean
        with self._lock:
            if distribution == "exponential":
                return self._rng.expovariate(1.0 / mean)
            # mu chosen so that the lognormal's mean is the configured mean.
            mu = math.log(mean) - _LOGNORMAL_SIGMA**2 / 2
            return self._rng.lognormvariate(mu, _LOGNORMAL_SIGMA)
