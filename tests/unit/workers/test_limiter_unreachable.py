"""The rate limiter's Redis gone away (a restart, a partition) during a request: the request
fails as a transient failure without being sent, so the item is handed back and retried
(docs/architecture.md, "Retry policy"); an outcome that cannot be reported keeps its answer."""

from __future__ import annotations

import httpx
import pytest
import redis
import together

from evalfleet.fleet import free_port
from evalfleet.workers.errors import Decision
from evalfleet.workers.ratelimit import LimitKey, RateLimiter
from evalfleet.workers.requesting import CallCounts, Request, RequestFailed, ask
from evalfleet.workers.retry_policy import RetryPolicy

REQUEST = Request("m", [{"role": "user", "content": "Who?"}], 0.0, 8, None)
REPLY = {
    "choices": [{"message": {"role": "assistant", "content": "a cat"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2},
}


def recording_client(sent: list[httpx.Request]) -> together.Together:
    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=REPLY)

    return together.Together(
        api_key="test-key",
        base_url="http://127.0.0.1:9",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handle)),
    )


def test_a_limiter_whose_redis_refuses_connections_makes_a_retried_transient_failure() -> None:
    # Given a real limiter on a Redis port nobody listens on
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    limiter = RateLimiter(client, LimitKey("http://127.0.0.1:9", "m"), rpm=600, adaptive=False)
    sent: list[httpx.Request] = []
    counts = CallCounts()

    # When a request asks it for a slot
    with pytest.raises(RequestFailed) as failed:
        ask(REQUEST, recording_client(sent), 4, limiter, counts, sleep=lambda _: None)

    # Then the request fails as transient, which the retry policy retries (the item is
    # handed back), and nothing went to the API: no slot, no request
    assert failed.value.decision is Decision.TRANSIENT
    assert isinstance(failed.value.cause, redis.exceptions.ConnectionError)
    assert RetryPolicy.retried(failed.value.decision)
    assert sent == [] and counts.calls == 0


class TimingOutFeedback:
    """A limiter that grants slots but whose Redis times out on every report."""

    def __init__(self) -> None:
        self.acquired = 0

    def acquire(self, tokens: int = 0, timeout: float = 300.0) -> float:
        self.acquired += 1
        return 0.0

    def on_success(self, limit_rpm: float | None = None) -> None:
        raise redis.exceptions.TimeoutError("Timeout reading from socket")

    def on_rate_limited(
        self,
        retry_after_s: float | None,
        reset_s: float | None = None,
        limit_rpm: float | None = None,
    ) -> None:
        raise redis.exceptions.TimeoutError("Timeout reading from socket")


def test_an_answer_whose_success_cannot_be_reported_is_kept() -> None:
    # Given a limiter whose Redis times out after granting the slot
    limiter = TimingOutFeedback()
    sent: list[httpx.Request] = []

    # When a request is answered
    completion = ask(REQUEST, recording_client(sent), 4, limiter, CallCounts())

    # Then the answer comes back, sent once: the paid-for answer is not thrown away
    assert completion.text == "a cat"
    assert len(sent) == 1 and limiter.acquired == 1


def test_a_timeout_while_asking_for_a_slot_is_transient_too() -> None:
    # Given a limiter whose Redis times out when asked for a slot
    class TimingOut(TimingOutFeedback):
        def acquire(self, tokens: int = 0, timeout: float = 300.0) -> float:
            raise redis.exceptions.TimeoutError("Timeout reading from socket")

    sent: list[httpx.Request] = []

    # When a request asks for a slot
    with pytest.raises(RequestFailed) as failed:
        ask(REQUEST, recording_client(sent), 4, TimingOut(), CallCounts())

    # Then it is a transient failure, and nothing was sent
    assert failed.value.decision is Decision.TRANSIENT and sent == []
