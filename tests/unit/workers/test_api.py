"""The chat call: what goes on the wire is what the SDK's own `create(messages=...)` sends."""

from __future__ import annotations

import json

import httpx
import pytest
import together

from evalfleet.workers.api import complete
from evalfleet.workers.errors import Decision, InvalidResponseError, classify

MESSAGES = [
    {"role": "system", "content": "Answer from the story.\n\nOnce upon a time…"},
    {"role": "user", "content": "Who?"},
    {"role": "assistant", "content": "a cat"},
    {"role": "user", "content": "Where did it live? <b>'; DROP TABLE x; --</b>"},
]


def reply(content: str) -> dict[str, object]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
    }


def client_seeing(
    sent: list[httpx.Request], content: str, base_url: str | None
) -> together.Together:
    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=reply(content), headers={"x-ratelimit-limit": "10"})

    return together.Together(
        api_key="test-key",
        base_url=base_url,
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handle)),
    )


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:9", None])
def test_the_request_is_the_one_the_sdk_sends_for_these_messages(base_url: str | None) -> None:
    # Given a client whose transport records requests
    sent: list[httpx.Request] = []
    client = client_seeing(sent, " in a barn ", base_url)

    # When complete() asks, and the SDK's create() is asked the same with messages=
    completion = complete(client, "org/model", MESSAGES, 0.0, 64, 7)
    client.chat.completions.create(
        model="org/model",
        messages=MESSAGES,  # type: ignore[arg-type]
        temperature=0.0,
        max_tokens=64,
        seed=7,
    )

    # Then both went to the same URL with the same JSON body, and the answer is parsed
    ours, sdks = sent
    assert ours.url == sdks.url
    assert ours.url.path == "/v1/chat/completions"
    assert json.loads(ours.content) == json.loads(sdks.content)
    assert json.loads(ours.content)["messages"] == MESSAGES
    assert (completion.text, completion.finish_reason) == ("in a barn", "stop")
    assert (completion.prompt_tokens, completion.completion_tokens) == (11, 2)
    assert completion.limit_rpm == 600  # Together states requests per second


def test_no_seed_sends_no_seed_field() -> None:
    sent: list[httpx.Request] = []
    complete(client_seeing(sent, "yes", "http://127.0.0.1:9"), "m", MESSAGES, 0.5, 8, None)
    assert "seed" not in json.loads(sent[0].content)


def test_a_blank_answer_with_finish_reason_stop_is_the_models_empty_answer() -> None:
    # Given a model that answers only white space and stops
    sent: list[httpx.Request] = []
    client = client_seeing(sent, "  \n", "http://127.0.0.1:9")
    # When complete() asks / Then that is its answer: nothing, to be scored
    completion = complete(client, "org/model", MESSAGES, 0, 8, None)
    assert (completion.text, completion.finish_reason) == ("", "stop")
    assert (completion.prompt_tokens, completion.completion_tokens) == (11, 2)


def client_answering(content: bytes) -> together.Together:
    def handle(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=content, headers={"content-type": "application/json"})

    return together.Together(
        api_key="test-key",
        base_url="http://127.0.0.1:9",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handle)),
    )


@pytest.mark.parametrize(
    "body",
    [b"<html>busy</html>", b"[]", b"{}", b'{"choices": []}', b'{"choices": [{"message": 3}]}'],
)
def test_a_200_that_is_not_a_chat_completion_is_a_transient_failure(body: bytes) -> None:
    # Given a server answering 200 with a body that holds no answer
    client = client_answering(body)
    # When complete() asks, then it raises, and the failure is retried later
    with pytest.raises(InvalidResponseError, match="org/model") as raised:
        complete(client, "org/model", MESSAGES, 0, 8, None)
    assert classify(raised.value) is Decision.TRANSIENT


def test_an_answer_without_usage_has_unknown_token_counts() -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": "yes"}}]}
    completion = complete(client_answering(json.dumps(body).encode()), "m", MESSAGES, 0, 8, None)
    assert (completion.text, completion.finish_reason) == ("yes", None)
    assert (completion.prompt_tokens, completion.completion_tokens) == (None, None)
