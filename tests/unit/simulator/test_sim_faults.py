"""Injected faults and per-model rate limits, seen through real HTTP clients."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import together
from together.types.chat import ChatCompletionMessageParam

from evalfleet.simulator.config import SIM_BASE, SIM_FINETUNED, SimConfig
from evalfleet.simulator.ratelimit import RateLimiter
from evalfleet.simulator.server import SimServer

MODEL = SIM_FINETUNED
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Tom had a red ball. He played in the park every day."},
    {"role": "user", "content": "What color was the ball?"},
]
BODY = {"model": MODEL, "messages": MESSAGES}


def client(sim: SimServer) -> together.Together:
    return together.Together(api_key="local", base_url=sim.base_url, max_retries=0, timeout=10)


def test_injected_429_carries_retry_after_and_no_made_up_limit() -> None:
    # Given every request is refused with 429, and no limit is configured
    with SimServer(SimConfig(fault_429=1.0)) as sim:
        # When the client asks
        with pytest.raises(together.RateLimitError) as caught:
            client(sim).chat.completions.create(model=MODEL, messages=MESSAGES)
        stats = sim.stats()
    # Then the 429 carries retry-after and Together's error body, but states no limit (a
    # client would otherwise slow down to a made-up one)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "1"
    assert "x-ratelimit-limit" not in headers
    assert caught.value.body == {
        "error": {
            "message": caught.value.response.json()["error"]["message"],
            "type": "rate_limit_exceeded",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert "rate limit" in caught.value.response.json()["error"]["message"]
    assert stats["faults"] == {"429": 1} and stats["by_status"] == {"429": 1}


def test_rpm_limit_refuses_requests_beyond_the_bucket_with_429() -> None:
    # Given 6 requests per minute for each model (one per 10 s), with a burst of 3
    with SimServer(SimConfig(rpm_per_model=6, rate_burst=3)) as sim:
        with httpx.Client(base_url=sim.base_url) as http:
            # When 5 requests for one model and 1 for the other arrive at once
            replies = [http.post("/v1/chat/completions", json=BODY) for _ in range(5)]
            other = http.post("/v1/chat/completions", json={**BODY, "model": SIM_BASE})
        stats = sim.stats()
    # Then the first 3 pass, the next get 429 with a retry-after, and the other model is untouched
    assert [reply.status_code for reply in replies] == [200, 200, 200, 429, 429]
    assert replies[0].headers["x-ratelimit-limit"] == "0.1"  # per second, as Together reports
    assert replies[2].headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(replies[3].headers["retry-after"]) <= 10
    assert replies[3].json()["error"]["code"] == "rate_limit_exceeded"
    assert other.status_code == 200
    assert stats["rate_limited"] == 2 and stats["by_status"] == {"200": 4, "429": 2}


def test_the_token_bucket_refills_at_the_configured_rate() -> None:
    # Given a limiter of 120 rpm (2 per second, burst 2) on a hand-driven clock
    now = [0.0]
    limiter = RateLimiter({"m": 120}, clock=lambda: now[0])
    # When the bucket is drained, then half a second passes
    drained = [limiter.acquire("m") for _ in range(3)]
    now[0] = 0.5
    refilled = limiter.acquire("m")
    # Then two pass, the third waits, and one more fits after 0.5 s
    assert [d.allowed for d in drained if d] == [True, True, False]
    assert refilled is not None and refilled.allowed
    assert limiter.acquire("unlimited") is None


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("503", together.InternalServerError),
        ("500", together.InternalServerError),
        ("reset", together.APIConnectionError),
        ("malformed", json.JSONDecodeError),
    ],
)
def test_injected_failures_surface_as_client_errors(fault: str, error: type[Exception]) -> None:
    # Given every request fails with one fault kind
    with SimServer(SimConfig(**{f"fault_{fault}": 1.0})) as sim:  # type: ignore[arg-type]
        # When the client asks / Then it raises the matching error
        with pytest.raises(error):
            client(sim).chat.completions.create(model=MODEL, messages=MESSAGES)
        # And the fault is counted by kind
        assert sim.stats()["faults"] == {fault: 1}


def test_503_uses_togethers_overloaded_error_body() -> None:
    with SimServer(SimConfig(fault_503=1.0)) as sim:
        reply = httpx.post(f"{sim.base_url}/v1/chat/completions", json=BODY)
    assert reply.status_code == 503
    assert reply.json()["error"]["type"] == "service_unavailable"
    assert reply.json()["error"]["message"].startswith("The server is overloaded")


def test_timeout_fault_answers_only_after_the_timeout() -> None:
    # Given a timeout fault of 2 s on every request
    with SimServer(SimConfig(fault_timeout=1.0, timeout_s=2.0)) as sim:
        # When a client waits only 0.3 s / Then it times out
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{sim.base_url}/v1/chat/completions", json=BODY, timeout=0.3)


def test_fault_rates_follow_the_configured_probabilities() -> None:
    # Given a 30% chance of 503 and a fixed fault seed
    with SimServer(SimConfig(fault_503=0.3, seed=1)) as sim:
        with httpx.Client(base_url=sim.base_url) as http:
            # When 200 requests are sent
            codes = [http.post("/v1/chat/completions", json=BODY).status_code for _ in range(200)]
    # Then roughly 30% fail (binomial sd ~ 6.5), the rest succeed
    assert 35 <= codes.count(503) <= 85
    assert codes.count(200) == 200 - codes.count(503)


def test_stop_wakes_requests_sleeping_in_a_long_timeout() -> None:
    # Given a request stuck in a 30 s timeout fault
    sim = SimServer(SimConfig(fault_timeout=1.0, timeout_s=30.0))
    sim.start()
    with httpx.Client(base_url=sim.base_url, timeout=10) as http:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(http.post, "/v1/chat/completions", json=BODY)
            while sim.stats()["in_flight"] == 0:
                time.sleep(0.01)
            # When the server stops
            sim.stop()
            # Then the client is released at once with a connection error, not after 30 s
            with pytest.raises(httpx.TransportError):
                pending.result(timeout=5)


def test_injected_429_under_a_configured_limit_states_it() -> None:
    with SimServer(SimConfig(fault_429=1.0, rpm_per_model=600)) as sim:
        with pytest.raises(together.RateLimitError) as caught:
            client(sim).chat.completions.create(model=MODEL, messages=MESSAGES)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "1"
    assert headers["x-ratelimit-limit"] == "10"  # per second, as Together reports
    assert {"x-ratelimit-remaining", "x-ratelimit-reset"} <= set(headers)
