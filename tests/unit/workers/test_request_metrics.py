"""The worker's API metrics move with the requests it sends: a 429 and a 503 counted by
outcome, every request timed, tokens and dollars of the answer bought (workers/metrics.py)."""

from __future__ import annotations

import httpx
import together
from prometheus_client import REGISTRY

from evalfleet.workers import metrics
from evalfleet.workers.requesting import CallCounts, Request, ask

MODEL = "metrics-test/model"
REQUEST = Request(MODEL, [{"role": "user", "content": "Who?"}], 0.0, 8, None)
REPLY = {
    "choices": [{"message": {"role": "assistant", "content": "a cat"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 300, "completion_tokens": 20},
}


def client_answering(statuses: list[int]) -> together.Together:
    """A client whose API answers each request with the next status (200: REPLY)."""
    replies = iter(statuses)

    def handle(_request: httpx.Request) -> httpx.Response:
        status = next(replies)
        body = REPLY if status == 200 else {"error": {"message": f"status {status}"}}
        return httpx.Response(status, json=body, headers={"retry-after": "0"})

    return together.Together(
        api_key="test-key",
        base_url="http://127.0.0.1:9",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handle)),
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"model": MODEL, **labels}) or 0.0


def test_a_429_and_a_503_before_an_answer_are_counted_by_outcome_and_timed() -> None:
    # Given the counters as they stand, and an API that answers 429, then 503, then 200
    before = {o: sample("evalfleet_api_requests_total", outcome=o) for o in ("429", "5xx", "ok")}
    timed = sample("evalfleet_api_request_seconds_count")
    # When one request is asked with 4 attempts
    completion = ask(REQUEST, client_answering([429, 503, 200]), 4, None, CallCounts(),
                     sleep=lambda _: None)  # fmt: skip
    # Then each outcome was counted once, and all three requests were timed
    assert completion.text == "a cat"
    for outcome in ("429", "5xx", "ok"):
        assert sample("evalfleet_api_requests_total", outcome=outcome) == before[outcome] + 1
    assert sample("evalfleet_api_request_seconds_count") == timed + 3


def test_tokens_and_dollars_of_an_answer_are_counted_at_the_runs_price() -> None:
    # Given the counters as they stand and an answer of 300 prompt and 20 completion tokens
    prompt, cost = (
        sample("evalfleet_tokens_total", kind="prompt"),
        sample("evalfleet_cost_usd_total"),
    )
    completion = ask(REQUEST, client_answering([200]), 1, None, CallCounts())
    # When it is counted at $1 in / $2 out per million tokens
    metrics.count_usage(MODEL, completion, (1.0, 2.0))
    # Then the tokens and the dollars moved by that much
    assert sample("evalfleet_tokens_total", kind="prompt") == prompt + 300
    assert sample("evalfleet_cost_usd_total") == cost + (300 * 1.0 + 20 * 2.0) / 1e6
