"""SimHandler without a socket: parsed requests in, status, headers and body out."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from evalfleet.simulator.config import DEFAULT_MODELS, SIM_BASE, SIM_FINETUNED, SimConfig
from evalfleet.simulator.handler import SimHandler, SimRequest, SimResponse

MESSAGES = [
    {"role": "system", "content": "Tom had a red ball. He played in the park every day."},
    {"role": "user", "content": "What color was the ball?"},
]


def chat(handler: SimHandler, body: Any, headers: dict[str, str] | None = None) -> SimResponse:
    """POST /v1/chat/completions with `body` (bytes as they are, else as JSON)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = handler.handle(SimRequest("POST", "/v1/chat/completions", headers or {}, data))
    assert response is not None, "the handler hung up"
    return response


def payload(response: SimResponse) -> Any:
    return json.loads(response.body)


def test_a_chat_request_is_answered_by_the_models_reader() -> None:
    # Given a handler serving the default models
    handler = SimHandler(SimConfig())
    # When the concise model is asked about the story
    response = chat(handler, {"model": SIM_FINETUNED, "messages": MESSAGES})
    # Then it answers 200 with the short span, and the stats count it
    assert response.status == 200
    assert payload(response)["choices"][0]["message"]["content"] == "red"
    assert handler.stats.snapshot()["by_status"] == {"200": 1}


def test_a_completion_has_the_openai_and_together_response_shape() -> None:
    # Given a handler
    handler = SimHandler(SimConfig())
    # When the verbose model answers
    response = chat(handler, {"model": SIM_BASE, "messages": MESSAGES})
    # Then the body is a JSON chat.completion with one assistant choice and usage
    assert response.headers["Content-Type"] == "application/json"
    body = payload(response)
    assert body["object"] == "chat.completion" and body["model"] == SIM_BASE
    assert body["id"].startswith("sim-") and isinstance(body["created"], int)
    [choice] = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] > 0


def test_requests_beyond_the_configured_limit_get_429_with_rate_headers() -> None:
    # Given 6 requests per minute per model (0.1 per second) and a burst of 1
    handler = SimHandler(SimConfig(rpm_per_model=6, rate_burst=1))
    body = {"model": SIM_FINETUNED, "messages": MESSAGES}
    # When two requests arrive at once
    first, second = chat(handler, body), chat(handler, body)
    # Then the first passes with the limit stated, the second is refused with retry-after
    assert first.status == 200
    assert first.headers["x-ratelimit-limit"] == "0.1"
    assert first.headers["x-ratelimit-remaining"] == "0"
    assert "retry-after" not in first.headers
    assert second.status == 429
    assert second.headers["x-ratelimit-limit"] == "0.1"
    assert second.headers["x-ratelimit-remaining"] == "0"
    assert second.headers["retry-after"] == "10"
    assert payload(second)["error"]["code"] == "rate_limit_exceeded"
    assert handler.stats.snapshot()["rate_limited"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b"[1, 2]", "request body must be a JSON object"),
        ({"model": SIM_BASE}, "`messages` is required and must be a non-empty list"),
        ({"messages": MESSAGES}, "`model` is required and must be a string"),
        ({"model": SIM_BASE, "messages": MESSAGES, "temperature": "hot"}, "`temperature`"),
        ({"model": SIM_BASE, "messages": MESSAGES, "max_tokens": 0}, "`max_tokens`"),
        ({"model": SIM_BASE, "messages": MESSAGES, "stream": True}, "`stream` is not supported"),
    ],
)
def test_a_malformed_body_gets_400_naming_what_is_wrong(body: Any, message: str) -> None:
    # Given a handler
    handler = SimHandler(SimConfig())
    # When a body that is not a valid chat request is posted
    response = chat(handler, body)
    # Then it gets 400 in Together's error envelope, with a message saying why
    assert response.status == 400
    error = payload(response)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(message)


def test_an_unknown_model_gets_404_model_not_found() -> None:
    # Given a handler serving the default models
    handler = SimHandler(SimConfig())
    # When a model it does not serve is asked
    response = chat(handler, {"model": "nobody/nothing", "messages": MESSAGES})
    # Then it gets Together's 404, counted under that model
    assert response.status == 404
    assert payload(response)["error"]["code"] == "model_not_found"
    assert "nobody/nothing" in payload(response)["error"]["message"]
    assert handler.stats.snapshot()["by_model"] == {"nobody/nothing": 1}


def test_an_injected_503_answers_overloaded_and_is_counted_as_a_fault() -> None:
    # Given every request draws the 503 fault
    handler = SimHandler(SimConfig(fault_503=1.0))
    # When a valid request arrives
    response = chat(handler, {"model": SIM_FINETUNED, "messages": MESSAGES})
    # Then it gets Together's overloaded error, and the fault is counted by kind
    assert response.status == 503
    assert payload(response)["error"]["type"] == "service_unavailable"
    assert handler.stats.snapshot()["faults"] == {"503": 1}


def test_an_injected_429_without_a_limit_states_retry_after_but_no_limit() -> None:
    # Given every request draws the 429 fault and no limit is configured
    handler = SimHandler(SimConfig(fault_429=1.0))
    # When a valid request arrives
    response = chat(handler, {"model": SIM_FINETUNED, "messages": MESSAGES})
    # Then it is refused at once with retry-after, and no made-up x-ratelimit-limit
    assert response.status == 429
    assert response.headers["retry-after"] == "1"
    assert "x-ratelimit-limit" not in response.headers


def test_an_injected_reset_hangs_up_without_an_answer() -> None:
    # Given every request draws the reset fault
    handler = SimHandler(SimConfig(fault_reset=1.0))
    # When a valid request arrives
    body = json.dumps({"model": SIM_FINETUNED, "messages": MESSAGES}).encode()
    response = handler.handle(SimRequest("POST", "/v1/chat/completions", {}, body))
    # Then there is no response to send, and the stats count a request with no status
    assert response is None
    assert handler.stats.snapshot()["by_status"] == {"none": 1}


def test_an_injected_malformed_fault_answers_200_with_a_body_that_is_not_json() -> None:
    # Given every request draws the malformed fault
    handler = SimHandler(SimConfig(fault_malformed=1.0))
    # When a valid request arrives
    response = chat(handler, {"model": SIM_FINETUNED, "messages": MESSAGES})
    # Then the status is 200 but the body does not parse
    assert response.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.body)


def test_stop_wakes_a_request_sleeping_out_its_latency_and_it_hangs_up() -> None:
    # Given a 30 s latency and a request sleeping it out on another thread
    handler = SimHandler(SimConfig(latency_ms_mean=30_000))
    body = json.dumps({"model": SIM_FINETUNED, "messages": MESSAGES}).encode()
    results: list[SimResponse | None] = []
    waiter = threading.Thread(
        target=lambda: results.append(
            handler.handle(SimRequest("POST", "/v1/chat/completions", {}, body))
        )
    )
    waiter.start()
    # When the handler is stopped
    handler.stop()
    waiter.join(timeout=5)
    # Then the request returns at once, with no answer
    assert not waiter.is_alive() and results == [None]


def test_a_required_api_key_is_checked_in_any_header_case() -> None:
    # Given a handler that requires the key "right"
    handler = SimHandler(SimConfig(required_api_key="right"))
    body = {"model": SIM_FINETUNED, "messages": MESSAGES}
    # When the right key comes in a lower-case header, and a wrong one in the usual case
    ok = chat(handler, body, {"authorization": "Bearer right"})
    refused = chat(handler, body, {"Authorization": "Bearer wrong"})
    # Then only the right one is answered; the wrong one gets Together's 401
    assert ok.status == 200
    assert refused.status == 401 and payload(refused)["error"]["code"] == "invalid_api_key"


def test_the_health_models_stats_and_reset_routes_answer_without_a_socket() -> None:
    # Given a handler that has answered one request
    handler = SimHandler(SimConfig())
    chat(handler, {"model": SIM_BASE, "messages": MESSAGES})
    # When the other routes are called (with a query string and a trailing slash)
    health = handler.handle(SimRequest("GET", "/health/?probe=1"))
    models = handler.handle(SimRequest("GET", "/v1/models"))
    stats = handler.handle(SimRequest("GET", "/sim/stats"))
    reset = handler.handle(SimRequest("POST", "/sim/reset"))
    missing = handler.handle(SimRequest("GET", "/v1/v1/chat/completions"))
    # Then each answers as over HTTP, and the reset zeroed the counters
    assert health is not None and payload(health) == {"status": "ok"}
    assert models is not None and {m["id"] for m in payload(models)} == set(DEFAULT_MODELS)
    assert stats is not None and payload(stats)["requests_total"] == 1
    assert reset is not None and payload(reset) == {"status": "reset"}
    assert missing is not None and missing.status == 404
    assert payload(missing)["error"]["code"] == "not_found"
    assert handler.stats.snapshot()["requests_total"] == 0


def test_a_crash_in_the_reader_answers_500_and_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a reader that crashes
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("reader bug")

    monkeypatch.setattr("evalfleet.simulator.handler.answer", broken)
    handler = SimHandler(SimConfig())
    # When a completion is requested
    response = chat(handler, {"model": SIM_BASE, "messages": MESSAGES})
    # Then the answer is a 500 with an error body, counted as such
    assert response.status == 500 and payload(response)["error"]["type"] == "server_error"
    assert handler.stats.snapshot()["by_status"] == {"500": 1}
