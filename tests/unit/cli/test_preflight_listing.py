"""The preflight when the model list does not settle it: a fine-tune on a dedicated endpoint
is absent from GET /v1/models, and some servers list nothing; then one 1-token request per
model decides, and only its 404 refuses the run."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import together

from evalfleet.preflight import PreflightError, check_endpoint
from evalfleet.schema.settings import Settings

URL = "http://127.0.0.1:9"
LISTED = {"data": [{"id": "meta-llama/Llama-3-8b-chat-hf"}]}  # OpenAI's shape
MODELS = {"base": "meta-llama/Llama-3-8b-chat-hf", "finetuned": "me/llama-ft-dedicated"}
Handler = Callable[[httpx.Request], httpx.Response]


def reply() -> dict[str, object]:
    message = {"role": "assistant", "content": "OK"}
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "length"}]}  # fmt: skip


def endpoint(models: httpx.Response, chat: httpx.Response | Exception) -> tuple[Handler, list]:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path == "/v1/models":
            return models
        if isinstance(chat, Exception):
            raise chat
        return chat

    return handle, sent


def check(handle: Handler) -> tuple[int | None, tuple[str, ...]]:
    client = together.Together(
        api_key="test-key", base_url=URL, max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handle)),
    )  # fmt: skip
    checked = check_endpoint(Settings(), URL, MODELS, client=client)
    return checked.listed, checked.notes


def test_a_model_absent_from_the_list_that_answers_passes() -> None:
    handle, sent = endpoint(httpx.Response(200, json=LISTED), httpx.Response(200, json=reply()))
    listed, notes = check(handle)
    # Then it goes on, saying the model is not listed (a typo a server answering any name
    # with its default model would let through, as llama.cpp's does)
    assert listed == 1 and len(notes) == 1
    assert f"model {MODELS['finetuned']} is not in the endpoint's model list" in notes[0]
    chat = [json.loads(r.content) for r in sent if r.url.path == "/v1/chat/completions"]
    assert chat == [{"model": MODELS["finetuned"], "max_tokens": 1,
                     "messages": [{"role": "user", "content": "Say OK."}]}]  # fmt: skip


def test_a_near_miss_of_a_listed_name_that_answers_is_noted_with_the_close_name() -> None:
    handle, _ = endpoint(httpx.Response(200, json=LISTED), httpx.Response(200, json=reply()))
    client = together.Together(
        api_key="test-key", base_url=URL, max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handle)),
    )  # fmt: skip
    typo = {"base": "meta-llama/Llama-3-8b-chat-hf", "finetuned": "meta-llama/Llama-3-8b-chat"}
    notes = check_endpoint(Settings(), URL, typo, client=client).notes
    assert notes and "close names it lists: meta-llama/Llama-3-8b-chat-hf" in notes[0]


def test_a_model_absent_from_the_list_that_answers_404_is_refused() -> None:
    missing = httpx.Response(404, json={"error": {"message": "model not found"}})
    handle, _ = endpoint(httpx.Response(200, json=LISTED), missing)
    with pytest.raises(PreflightError) as refused:
        check(handle)
    assert str(refused.value) == (
        f"the API at {URL} does not know the model 'me/llama-ft-dedicated' (finetuned); "
        "it lists 1 model, none close to it (GET /v1/models)"
    )


@pytest.mark.parametrize(
    "models",
    [httpx.Response(404), httpx.Response(200, text="<html>", headers={"content-type": "text/html"}),
     httpx.Response(200, content=b"{not json", headers={"content-type": "application/json"})],
)  # fmt: skip
def test_no_usable_model_list_means_each_model_is_asked(models: httpx.Response) -> None:
    handle, sent = endpoint(models, httpx.Response(200, json=reply()))
    assert check(handle) == (None, ())
    assert sum(r.url.path == "/v1/chat/completions" for r in sent) == 2


def test_a_server_without_a_model_list_and_a_404_names_the_model() -> None:
    handle, _ = endpoint(httpx.Response(404), httpx.Response(404))
    with pytest.raises(PreflightError, match=r"'meta-llama/Llama-3-8b-chat-hf' \(base\): 404"):
        check(handle)


@pytest.mark.parametrize(
    ("chat", "note"),
    [
        (httpx.Response(503), "a 1-token request got 503; going on"),
        (httpx.ReadTimeout("timed out"), "no answer to a 1-token request within 5s"),
    ],
)
def test_a_busy_or_slow_model_is_a_note_not_a_refusal(
    chat: httpx.Response | Exception, note: str
) -> None:
    handle, _ = endpoint(httpx.Response(200, json=LISTED), chat)
    assert check(handle) == (1, (f"model {MODELS['finetuned']}: {note}",))


def test_a_key_refused_by_the_chat_request_is_refused() -> None:
    handle, _ = endpoint(httpx.Response(404), httpx.Response(401))
    with pytest.raises(PreflightError, match=r"refused the key at http://127\.0\.0\.1:9 \(401"):
        check(handle)
