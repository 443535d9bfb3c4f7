"""One request for one turn: cluster-wide rate limit, retries as workers/retry_policy.py says."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

import together

from evalfleet.workers import metrics
from evalfleet.workers.api import Completion, complete, header_number, limit_rpm
from evalfleet.workers.errors import Decision, classify
from evalfleet.workers.ratelimit import RateLimitTimeout
from evalfleet.workers.retry_policy import LIMITER_UNREACHABLE, RetryPolicy

logger = logging.getLogger(__name__)


class Limiter(Protocol):
    def acquire(self, tokens: int = 0, timeout: float = 300.0) -> float: ...
    def on_success(self, limit_rpm: float | None = None) -> None: ...
    def on_rate_limited(
        self,
        retry_after_s: float | None,
        reset_s: float | None = None,
        limit_rpm: float | None = None,
    ) -> None: ...


class Cancelled(Exception):
    """Another turn of the same delivery failed: this one stops before its next request."""


@dataclass
class CallCounts:
    """API calls of one delivery, shared by its turn threads, and its cancellation."""

    calls: int = 0
    rate_limited: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._cancelled.set()

    def check(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled("stopped: another turn of this delivery failed")

    def add(self, calls: int = 0, rate_limited: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.rate_limited += rate_limited


@dataclass(frozen=True)
class Request:
    model: str
    messages: list[dict[str, str]]
    temperature: float
    max_tokens: int
    seed: int | None


class RequestFailed(Exception):
    """Every attempt of one request failed; `decision` says how the last one failed."""

    def __init__(self, decision: Decision, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.decision = decision
        self.cause = cause


def estimate_tokens(request: Request) -> int:
    """A cheap upper-side guess for the tokens-per-minute budget (about 4 characters a token)."""
    characters = sum(len(m["content"]) for m in request.messages)
    return characters // 4 + request.max_tokens


def ask(
    request: Request,
    client: together.Together,
    attempts: int,
    limiter: Limiter | None,
    counts: CallCounts,
    sleep: Callable[[float], None] = time.sleep,
    in_flight: AbstractContextManager[object] | None = None,
) -> Completion:
    """The answer, or RequestFailed: 429 and transient failures are retried `attempts` times;
    anything else (401/403/404/400) is raised at once. `in_flight` is held around each HTTP
    call only (the process's bound on requests in flight), never while waiting on the limiter."""
    for attempt in range(attempts):
        counts.check()
        if limiter is not None:
            try:
                limiter.acquire(estimate_tokens(request))
            except RateLimitTimeout as exc:  # the cluster is throttled: retry the item later
                raise RequestFailed(Decision.RATE_LIMITED, exc) from exc
            except LIMITER_UNREACHABLE as exc:
                # No slot without the limiter: the item is handed back and retried later
                # (docs/architecture.md, "Retry policy"), not failed as an unexpected error.
                raise RequestFailed(Decision.TRANSIENT, exc) from exc
            counts.check()
        try:
            completion = send(request, client, counts, in_flight)
        except Exception as exc:  # noqa: BLE001 - classified right here
            decision = classify(exc)
            if not RetryPolicy.retried(decision):
                raise RequestFailed(decision, exc) from exc
            if attempt == attempts - 1:
                raise RequestFailed(decision, exc) from exc
            if decision is Decision.RATE_LIMITED:
                counts.add(rate_limited=1)
                headers = getattr(getattr(exc, "response", None), "headers", None)
                retry_after = header_number(headers, "retry-after")
                if limiter is not None:
                    # The limiter slows the whole cluster and holds everyone past retry-after.
                    report(
                        limiter.on_rate_limited,
                        retry_after,
                        header_number(headers, "x-ratelimit-reset"),
                        limit_rpm(headers),
                    )
                else:
                    sleep(
                        retry_after
                        if retry_after is not None
                        else RetryPolicy.request_delay(attempt)
                    )
            else:
                sleep(
                    RetryPolicy.request_delay(attempt)
                )  # 503s and timeouts do not slow the limiter
            continue
        if limiter is not None:
            report(limiter.on_success, completion.limit_rpm)
        return completion
    raise AssertionError("unreachable: the loop returns or raises")


def send(
    request: Request,
    client: together.Together,
    counts: CallCounts,
    in_flight: AbstractContextManager[object] | None,
) -> Completion:
    """One HTTP call, counted and timed in the worker's metrics (workers/metrics.py)."""
    with in_flight or contextlib.nullcontext():
        counts.add(calls=1)
        started = time.perf_counter()
        try:
            completion = complete(
                client, request.model, request.messages,
                request.temperature, request.max_tokens, request.seed,
            )  # fmt: skip
        except Exception as exc:
            metrics.count_request(request.model, time.perf_counter() - started, exc)
            raise
    metrics.count_request(request.model, completion.latency_ms / 1000, None)
    return completion


def report(feedback: Callable[..., None], *args: float | None) -> None:
    """Tell the limiter how a request went; without its Redis, the limiter only misses one
    outcome, and the answer (paid for) is kept (docs/architecture.md, "Retry policy")."""
    try:
        feedback(*args)
    except LIMITER_UNREACHABLE as exc:
        logger.warning("rate limiter unreachable, outcome not counted: %s", type(exc).__name__)
