"""One retry policy: which failures are retried, how often, and with what delay."""

from __future__ import annotations

import pytest

from evalfleet.schema.settings import Settings
from evalfleet.workers.errors import Decision
from evalfleet.workers.retry_policy import RetryPolicy


def test_the_policy_takes_every_layers_count_from_the_settings() -> None:
    settings = Settings(
        EVALFLEET_API_MAX_RETRIES=1,
        EVALFLEET_REQUEST_ATTEMPTS=3,
        EVALFLEET_TASK_MAX_RETRIES=2,
        EVALFLEET_MAX_ATTEMPTS=4,
    )
    assert RetryPolicy.of(settings) == RetryPolicy(1, 3, 2, 4)


@pytest.mark.parametrize(
    ("decision", "retried"),
    [
        (Decision.RATE_LIMITED, True),
        (Decision.TRANSIENT, True),
        (Decision.STOP_RUN, False),
        (Decision.FAIL_MODEL, False),
        (Decision.FAIL_TURN, False),
    ],
)
def test_only_rate_limits_and_transient_failures_are_retried(
    decision: Decision, retried: bool
) -> None:
    assert RetryPolicy.retried(decision) is retried


def test_delays_grow_from_a_jittered_base_up_to_their_caps() -> None:
    for _ in range(50):
        assert 0.5 <= RetryPolicy.request_delay(0) <= 1.0
        assert 15.0 <= RetryPolicy.request_delay(10) <= 30.0
        assert 2.5 <= RetryPolicy.task_delay(0, Decision.RATE_LIMITED) <= 5.0
        assert 1.0 <= RetryPolicy.task_delay(0, Decision.TRANSIENT) <= 2.0
        assert 60.0 <= RetryPolicy.task_delay(20, Decision.TRANSIENT) <= 120.0


def test_the_task_and_delivery_caps_count_as_documented() -> None:
    policy = RetryPolicy(sdk_retries=0, request_attempts=4, task_retries=5, max_deliveries=8)
    assert not policy.task_retries_exhausted(4) and policy.task_retries_exhausted(5)
    assert not policy.deliveries_exhausted(8) and policy.deliveries_exhausted(9)
