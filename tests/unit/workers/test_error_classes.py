"""API failures are classified once: who retries what (docs/architecture.md, D5)."""

from __future__ import annotations

import httpx
import pytest
import together

from evalfleet.workers.errors import (
    ContentFilteredError,
    Decision,
    InvalidResponseError,
    classify,
    describe,
)

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


def test_timeouts_connection_errors_and_invalid_bodies_are_transient() -> None:
    assert classify(together.APITimeoutError(request=REQUEST)) is Decision.TRANSIENT
    assert classify(together.APIConnectionError(request=REQUEST)) is Decision.TRANSIENT
    assert classify(InvalidResponseError("no choices")) is Decision.TRANSIENT


def test_a_content_filter_refusal_fails_the_turn_at_once() -> None:
    # The same request is filtered again: retrying only spends requests
    assert classify(ContentFilteredError("withheld")) is Decision.FAIL_TURN


def test_a_connection_cut_mid_body_is_a_transient_connection_failure_saying_so() -> None:
    # Given the SDK's error for a server that closed before the body's end
    cut = httpx.RemoteProtocolError("peer closed connection without sending complete message body")
    error = together.APIConnectionError(request=REQUEST)
    error.__cause__ = cut
    # Then it is retried, and its description says the connection was cut
    assert classify(error) is Decision.TRANSIENT
    assert describe(error).endswith("(connection cut mid-response)")


def test_description_names_the_status_and_the_message_on_one_line() -> None:
    text = describe(status_error(404))
    assert text.startswith("NotFoundError (404):") and "boom" in text and "\n" not in text
