"""A batch's output and error lines, classified as the synchronous path classifies its
responses (workers/errors.py)."""

from __future__ import annotations

import json

from evalfleet.workers.batch.results import read_outcomes
from evalfleet.workers.errors import Decision


def jsonl(*lines: object) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def answer(name: str, content: str) -> dict[str, object]:
    body = {
        "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 2},
    }
    return {"custom_id": name, "response": {"status_code": 200, "body": body}}


def error(name: str, code: int, message: str) -> dict[str, object]:
    return {"custom_id": name, "error": {"code": code, "message": message}}


def test_an_output_line_is_the_answer_with_its_tokens() -> None:
    outcomes = read_outcomes(jsonl(answer("a", " Tom ")), b"", "org/m")
    completion = outcomes["a"].completion
    assert completion is not None
    assert (completion.text, completion.finish_reason) == ("Tom", "stop")
    assert (completion.prompt_tokens, completion.completion_tokens) == (40, 2)


def test_error_lines_are_classified_by_their_status() -> None:
    errors = jsonl(
        error("busy", 503, "overloaded"), error("limit", 429, "slow down"),
        error("bad", 400, "context too long"), error("key", 401, "invalid key"),
        error("gone", 404, "no such model"),
    )  # fmt: skip
    outcomes = read_outcomes(b"", errors, "org/m")
    decisions = {name: o.failure.decision for name, o in outcomes.items() if o.failure}
    assert decisions == {
        "busy": Decision.TRANSIENT, "limit": Decision.RATE_LIMITED, "bad": Decision.FAIL_TURN,
        "key": Decision.STOP_RUN, "gone": Decision.FAIL_MODEL,
    }  # fmt: skip
    busy = outcomes["busy"].failure
    assert busy is not None and busy.reason == "batch error (503): overloaded"


def test_an_empty_answer_is_the_models_answer_like_a_synchronous_one() -> None:
    # A blank answer with finish_reason stop is the model's: stored "" and scored
    completion = read_outcomes(jsonl(answer("a", "  ")), b"", "org/m")["a"].completion
    assert completion is not None and completion.text == ""


def test_a_line_whose_body_is_no_chat_completion_is_retried_like_a_synchronous_one() -> None:
    line = {"custom_id": "a", "response": {"status_code": 200, "body": {"choices": []}}}
    failure = read_outcomes(jsonl(line), b"", "org/m")["a"].failure
    assert failure is not None and failure.decision is Decision.TRANSIENT
    assert "InvalidResponseError" in failure.reason and "no choices" in failure.reason


def test_an_output_line_with_an_error_status_is_a_failure() -> None:
    line = {"custom_id": "a", "response": {"status_code": 500, "body": {}}}
    failure = read_outcomes(jsonl(line), b"", "org/m")["a"].failure
    assert failure is not None and failure.decision is Decision.TRANSIENT


def test_an_answer_wins_over_an_error_for_the_same_custom_id_and_junk_lines_are_skipped() -> None:
    output = b"not json\n" + jsonl({"no": "id"}, answer("a", "Tom"))
    outcomes = read_outcomes(output, jsonl(error("a", 503, "late duplicate")), "org/m")
    assert list(outcomes) == ["a"] and outcomes["a"].completion is not None
