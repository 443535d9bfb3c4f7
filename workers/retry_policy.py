"""Who retries which failure, how often and after what delay (docs/architecture.md, "Retry
policy" and D5). Each failure kind has exactly one layer that retries it; the code of every
layer reads its count and delay from here.

1. The `together` SDK: 408, 409, 429, 5xx, ``api_max_retries`` times (default 0, off: so
   every request passes the cluster-wide rate limiter and is counted).
2. One request (``requesting.ask``): RATE_LIMITED (429) and TRANSIENT (5xx, timeout,
   connection, a cut mid-body too, and InvalidResponseError: a 200 that is no chat
   completion), ``request_attempts`` attempts in all (4). After a
   429 the limiter holds the whole cluster past retry-after / x-ratelimit-reset; otherwise
   ``request_delay``: 0.5-1 s, doubling, at most 30 s.
3. One item (the Celery retry in ``tasks.answer_item``): what is still RATE_LIMITED or
   TRANSIENT after every attempt, ``task_max_retries`` times (5), then the item fails with
   the reason; ``task_delay``: 2.5-5 s after a 429, 1-2 s otherwise, doubling, at most
   120 s. A database error is retried the same way, without a cap (the database is the
   source of truth: nothing can be stored until it is back). So is the rate limiter's Redis
   gone away (LIMITER_UNREACHABLE: a Redis restart, a partition): the request fails at once
   as TRANSIENT, without sending, and the item is handed back and retried within
   ``task_max_retries``; a success or a 429 that cannot be reported to it is logged, and the
   answer kept.
4. One delivery (``delivery.start_delivery``): a worker process that died holding the item
   (a poison message, OOM, kill -9; Celery redelivers it, task_reject_on_worker_lost), up to
   ``max_attempts`` deliveries (8), then the item fails.
5. Nobody: STOP_RUN (401/403: the run stops), FAIL_MODEL (404: the model's items fail),
   FAIL_TURN (400/422, and ContentFilteredError: the same request is filtered again; the
   turn's error is stored as its answer row, never scored).

A 200 with empty or blank content and a normal finish is no failure at all: it is the
model's answer, scored (workers/answer_body.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import redis

from evalfleet.schema.settings import Settings
from evalfleet.workers.errors import Decision

# Decisions a request and a task may retry; the others are final at once.
RETRIED = frozenset({Decision.RATE_LIMITED, Decision.TRANSIENT})
# The limiter's Redis cannot be reached (BusyLoadingError, a restarted Redis reading its
# append-only file, is a ConnectionError): nothing is sent, the item layer retries.
LIMITER_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
REQUEST_BASE_S, REQUEST_CAP_S = 1.0, 30.0
# A rate-limited item waits longer than a transient fault: the quota refills by the minute.
TASK_BASE_S = {Decision.RATE_LIMITED: 5.0}
TASK_DEFAULT_BASE_S, TASK_CAP_S = 2.0, 120.0


def backoff(attempt: int, base_s: float, cap_s: float) -> float:
    """Exponential backoff with jitter: half to all of base, 2 base, 4 base, ... up to cap."""
    return float(random.uniform(0.5, 1.0) * min(cap_s, base_s * 2.0**attempt))


@dataclass(frozen=True)
class RetryPolicy:
    """The counts of every layer, as configured (schema/settings.py gives the defaults)."""

    sdk_retries: int
    request_attempts: int
    task_retries: int
    max_deliveries: int

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        return cls(
            sdk_retries=settings.api_max_retries,
            request_attempts=settings.request_attempts,
            task_retries=settings.task_max_retries,
            max_deliveries=settings.max_attempts,
        )

    @staticmethod
    def retried(decision: Decision) -> bool:
        """Whether a request (and then the task) tries this failure again."""
        return decision in RETRIED

    @staticmethod
    def request_delay(attempt: int) -> float:
        """Before a request's next attempt, when no limiter or retry-after says how long."""
        return backoff(attempt, REQUEST_BASE_S, REQUEST_CAP_S)

    @staticmethod
    def task_delay(retries: int, decision: Decision) -> float:
        """Before the Celery retry of an item (`retries` done so far)."""
        return backoff(retries, TASK_BASE_S.get(decision, TASK_DEFAULT_BASE_S), TASK_CAP_S)

    def task_retries_exhausted(self, retries: int) -> bool:
        return retries >= self.task_retries

    def deliveries_exhausted(self, attempts: int) -> bool:
        """`attempts` counts this delivery too."""
        return attempts > self.max_deliveries
