"""read_answer: a 200's body as the model's answer, or the endpoint's failure
(docs/architecture.md, "Retry policy"): model output is scored, infrastructure failure not."""

from __future__ import annotations

import json

import httpx
import pytest

from evalfleet.workers.answer_body import read_answer, read_json
from evalfleet.workers.errors import (
    ContentFilteredError,
    Decision,
    InvalidResponseError,
    classify,
)
from evalfleet.workers.retry_policy import RetryPolicy


def body(content: object, finish_reason: object = "stop", **extra: object) -> object:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}}
    if finish_reason is not None:
        choice["finish_reason"] = finish_reason
    data = {"choices": [choice], "usage": {"prompt_tokens": 40, "completion_tokens": 3}, **extra}
    return read_json(httpx.Response(200, content=json.dumps(data).encode()), "m")


def test_an_answer_is_its_text_stripped_its_finish_reason_and_its_tokens() -> None:
    answer = read_answer(body("  the barn \n", "length"), "m")
    assert (answer.text, answer.finish_reason) == ("the barn", "length")
    assert (answer.prompt_tokens, answer.completion_tokens) == (40, 3)


def test_a_nul_in_the_output_is_kept_as_a_replacement_character() -> None:
    # PostgreSQL's text cannot store NUL: the answer must still be storable
    assert read_answer(body("the\x00 barn"), "m").text == "the\ufffd barn"


@pytest.mark.parametrize("content", ["", "   ", "\n\t", None])
@pytest.mark.parametrize("finish_reason", ["stop", "length", "eos"])
def test_empty_or_blank_content_with_a_normal_finish_is_the_models_empty_answer(
    content: str | None, finish_reason: str
) -> None:
    answer = read_answer(body(content, finish_reason), "m")
    assert (answer.text, answer.finish_reason) == ("", finish_reason)
    assert answer.completion_tokens == 3


def test_text_without_a_finish_reason_is_still_an_answer() -> None:
    assert read_answer(body("yes", None), "m").text == "yes"


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b'{"choices": [{"message": {"content": "cut', "not JSON"),  # a body cut short
        (b"[]", "not a JSON object"),
        (b"{}", "no choices"),
        (b'{"choices": []}', "no choices"),
        (b'{"choices": null}', "no choices"),
        (b'{"choices": [{"finish_reason": "stop"}]}', "no message"),
        (b'{"choices": [{"message": 3}]}', "no message"),
        (b'{"choices": [{"message": {"content": 7}, "finish_reason": "stop"}]}', "not text"),
        (b'{"choices": [{"message": {"content": ""}}]}', "finish_reason missing"),
        (b'{"choices": [{"message": {"content": ""}, "finish_reason": "tool_calls"}]}',
         "finish_reason tool_calls"),
    ],
)  # fmt: skip
def test_a_body_that_is_no_chat_completion_is_a_transient_infrastructure_failure(
    raw: bytes, says: str
) -> None:
    # When the body holds no answer of the model's / Then it is an error naming the model
    # and the problem, retried (and never scored)
    with pytest.raises(InvalidResponseError, match=says) as raised:
        read_answer(read_json(httpx.Response(200, content=raw), "org/model"), "org/model")
    assert "org/model" in str(raised.value)
    assert classify(raised.value) is Decision.TRANSIENT
    assert RetryPolicy.retried(classify(raised.value))


@pytest.mark.parametrize("content", ["", "I cannot help with that.", None])
def test_a_content_filter_refusal_fails_the_turn_and_is_not_retried(content: str | None) -> None:
    with pytest.raises(ContentFilteredError, match="content filter") as raised:
        read_answer(body(content, "content_filter"), "m")
    assert classify(raised.value) is Decision.FAIL_TURN
    assert not RetryPolicy.retried(classify(raised.value))
