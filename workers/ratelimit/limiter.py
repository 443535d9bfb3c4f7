"""The limiter a worker holds per (base URL, model) (docs/architecture.md, "Rate limiter").

Requests are *spaced*, not windowed (GCRA, "theoretical arrival time"): each request
reserves the next slot, 60 / rate after the previous one, and sleeps until it. Providers
enforce limits as token buckets with about one second of burst (Together: "600 RPM" is 10
requests per second), so a minute-window limiter that sends its quota at once is refused
there; evenly spaced requests are not.
"""

from __future__ import annotations

import logging
import random
import threading
import time

import redis

from evalfleet.workers.ratelimit import feedback, state, tuning
from evalfleet.workers.ratelimit.ahead import SlotsAhead
from evalfleet.workers.ratelimit.key import LimitKey
from evalfleet.workers.ratelimit.limits import Limits
from evalfleet.workers.ratelimit.reservation import (
    RateLimitTimeout,
    Reservation,
    from_reply,
    reserve_args,
)
from evalfleet.workers.ratelimit.scripts import Scripts

logger = logging.getLogger(__name__)


class RateLimiter:
    """Cluster-wide limiter for one `LimitKey`; thread-safe, one per process and key is enough.

    `rpm`: the user's limit; with `adaptive=False` a fixed rate (None = no request
    limit), with `adaptive=True` a cap on the learned rate. `tpm`: tokens per minute,
    spaced like requests (cost = the `tokens` passed to `acquire`). `initial_rpm` is
    used only when Redis has no state for the key yet.
    """

    def __init__(
        self,
        redis: redis.Redis,
        key: LimitKey,
        rpm: float | None = None,
        tpm: float | None = None,
        adaptive: bool = True,
        initial_rpm: float = 600.0,
        min_rpm: float = 6.0,
        max_rpm: float = 100_000.0,
        *,
        horizon_s: float = tuning.HORIZON_S,
    ) -> None:
        self.limits = Limits.resolve(rpm, tpm, adaptive, initial_rpm, min_rpm, max_rpm, horizon_s)
        self.key = key
        self._redis = redis
        self._name = key.redis_key()
        scripts = Scripts.register(redis)
        self._reserve = scripts.reserve
        self._success = scripts.success
        self._limited = scripts.limited
        # The slot of this thread's last request: a 429 to a request sent before the
        # last cut is an echo of the overload that caused that cut, not a new signal.
        self._local = threading.local()
        self._ahead = SlotsAhead()
        self._refill = threading.Lock()

    # The settings, as attributes of the limiter (read-only: `limits` is resolved once).
    @property
    def adaptive(self) -> bool:
        return self.limits.adaptive

    @property
    def tpm(self) -> float | None:
        return self.limits.tpm

    @property
    def horizon_s(self) -> float:
        return self.limits.horizon_s

    @property
    def min_rpm(self) -> float:
        return self.limits.min_rpm

    @property
    def max_rpm(self) -> float:
        return self.limits.max_rpm

    @property
    def initial_rpm(self) -> float:
        return self.limits.initial_rpm

    def reserve(self, tokens: int = 0) -> Reservation:
        """Try to reserve the next slot, without sleeping (acquire = reserve + sleep)."""
        return self.reserve_slots(tokens, 1)[0]

    def reserve_slots(self, tokens: int, most: int) -> list[Reservation]:
        """Reserve up to `most` consecutive slots in one call, as many as fit in
        BATCH_SPAN_S at the current rate (one when a token limit applies); or one refusal."""
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        reply = self._reserve(keys=[self._name], args=reserve_args(self.limits, tokens, most))
        return from_reply(reply)

    def acquire(self, tokens: int = 0, timeout: float = 300.0) -> float:
        """Block until this request may be sent; returns the seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            reservation = self._ahead.take() or self._reserve_ahead(tokens)
            if reservation.granted:
                if reservation.wait_s >= tuning.LEAST_SLEEP_S:
                    time.sleep(reservation.wait_s)
                # A 429 may have blocked everyone or cut the rate while we slept: our slot
                # then falls inside the block or was spaced for the old rate, and sending
                # would only draw another 429.
                if reservation.wait_s > tuning.RECHECK_AFTER_S and state.is_stale(
                    self._redis, self._name, reservation.reserved_at
                ):
                    self._ahead.drop()  # reserved before the same cut or block
                    continue
                self._local.slot = reservation.slot
                return time.monotonic() - started
            # Jitter spreads the threads that were turned away, so they do not all ask
            # again at the same instant; the horizon keeps enough slots reserved meanwhile.
            pause = reservation.wait_s + random.uniform(0.25, 1.0) * self.horizon_s
            if time.monotonic() + pause > deadline:
                raise RateLimitTimeout(f"no slot for {self._name} within {timeout:g}s")
            time.sleep(pause)

    def _reserve_ahead(self, tokens: int) -> Reservation:
        """The first of the slots one call reserves; this process's later callers take the rest.
        One caller at a time: the threads whose requests ended together (a wave of 64) would
        otherwise each make a call, before the first call's slots arrived for them all."""
        with self._refill:
            waited = self._ahead.take()
            if waited is not None:
                return waited
            first, *rest = self.reserve_slots(tokens, tuning.MAX_BATCH)
            if rest:
                self._ahead.keep(rest)
            return first

    def on_success(self, limit_rpm: float | None = None) -> None:
        """Report a successful request: in adaptive mode, the rate grows (additive increase),
        never past `limit_rpm`, the limit the response stated (`x-ratelimit-limit`), which
        it drops to at once, and the success counts in the share of 429s that tells noise
        from a limit. A fixed limit has nothing to learn: no round trip to Redis."""
        if not self.adaptive:
            return
        sent_at: float = getattr(self._local, "slot", -1.0)
        args = feedback.success_args(self.limits, limit_rpm, sent_at)
        rate = self._success(keys=[self._name], args=args)
        logger.debug("success on %s: rate %s rpm", self._name, rate)

    def on_rate_limited(
        self,
        retry_after_s: float | None,
        reset_s: float | None = None,
        limit_rpm: float | None = None,
    ) -> None:
        """Report a 429 (only a 429: not 503s, not timeouts).

        Blocks every worker for `retry_after_s` (else `reset_s`, e.g. from
        `x-ratelimit-reset`), and in adaptive mode cuts the rate (multiplicative decrease)
        unless the share of 429s says they are noise (feedback.py), and straight to just
        under `limit_rpm` when the provider said its limit (`x-ratelimit-limit`); the rate
        then never grows past it.
        Call it from the thread that acquired the request's slot: the limiter remembers
        that slot per thread, to ignore 429s to requests sent before the last cut.
        """
        block = feedback.block_seconds(retry_after_s, reset_s)
        sent_at: float = getattr(self._local, "slot", -1.0)
        self._ahead.drop()  # spaced for the rate before this 429, maybe inside its block
        cut, rate, _blocked_until = self._limited(
            keys=[self._name],
            args=feedback.limited_args(self.limits, block, sent_at, limit_rpm),
        )
        if int(cut) == 1:
            # The key, not the base URL: a URL may carry credentials (docs/architecture.md, D9).
            logger.info(
                "429 on %s: rate cut to %.1f rpm, blocked %.2fs",
                self._name,
                float(rate),
                block or 0.0,
            )
        else:
            logger.debug("429 on %s: no cut (recent cut or older request)", self._name)

    def current_rpm(self) -> float:
        """The rate in force now (inf when requests are not limited)."""
        return state.current_rpm(self._redis, self._name, self.limits)

    def snapshot(self) -> dict[str, float]:
        """State for `evalfleet status` and benchmarks (times in seconds, counts as floats)."""
        return state.snapshot(self._redis, self._name, self.limits)
