"""API failures are classified once: who retries what (docs/architecture.md, D5)."""

from __future__ import annotations

import httpx
import pytest
import together

from evalfleet.workers.errors import Decision, EmptyAnswerError, classify, describe

REQUEST = httpx.Request("POST", "http://127.0.0.1:8000/v1/chat/completions")


def status_error(status: int) -> together.APIStatusError:
    response = httpx.Response(status, request=REQUEST, json={"error": {"message": "boom"}})
    client = together.Together(api_key="k", base_url="http://127.0.0.1:1", max_retries=0)
    return client._make_status_error_from_response(response)


@pytest.mark.parametrize(
    ("status", "decision"),
    [
        (429, Decision.RATE_LIMITED),
        (401, Decision.STOP_RUN),
        (403, Decision.STOP_RUN),
        (404, Decision.FAIL_MODEL),
        (400, Decision.FAIL_TURN),
        (422, Decision.FAIL_TURN),
        (500, Decision.TRANSIENT),
        (503, Decision.TRANSIENT),
        (408, Decision.TRANSIENT),
    ],
)
def test_each_http_status_gets_its_decision(status: int, decision: Decision) -> None:
    assert classify(status_error(status)) is decision


def test_timeouts_connection_errors_and_empty_answers_are_transient() -> None:
    assert classify(together.APITimeoutError(request=REQUEST)) is Decision.TRANSIENT
    assert classify(together.APIConnectionError(request=REQUEST)) is Decision.TRANSIENT
    assert classify(EmptyAnswerError("empty")) is Decision.TRANSIENT


def test_description_names_the_status_and_the_message_on_one_line() -> None:
    text = describe(status_error(404))
    assert text.startswith("NotFoundError (404):") and "boom" in text and "\n" not in text
