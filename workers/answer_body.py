"""What a 200 from the chat-completions endpoint says the model answered
(docs/architecture.md, "Retry policy"): model output is scored, infrastructure failure is
not. An empty or blank answer with a normal finish is the model's answer; a body that is
no chat completion, or a content filter's refusal, is an error."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from evalfleet.workers.errors import ContentFilteredError, InvalidResponseError

# How a model ends an answer of its own: "eos" is Together's older name for "stop".
NORMAL_FINISHES = frozenset({"stop", "length", "eos"})
CONTENT_FILTER = "content_filter"


@dataclass(frozen=True)
class ModelAnswer:
    text: str  # stripped; "" when the model answered nothing
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


def read_json(response: httpx.Response, model: str) -> object:
    """The response's JSON body, or InvalidResponseError."""
    try:
        return response.json()
    except ValueError as exc:  # not JSON (a body cut short by a proxy, an HTML error page)
        raise InvalidResponseError(f"model {model}: the response is not JSON ({exc})") from exc


def read_answer(data: object, model: str) -> ModelAnswer:
    """The model's answer in a chat-completion body, or InvalidResponseError /
    ContentFilteredError."""
    if not isinstance(data, dict):
        raise InvalidResponseError(f"model {model}: the response is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise InvalidResponseError(f"model {model}: the response has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise InvalidResponseError(f"model {model}: the response's choice has no message")
    reason = choice.get("finish_reason")
    reason = reason if isinstance(reason, str) else None
    if reason == CONTENT_FILTER:
        raise ContentFilteredError(f"model {model}: the endpoint's content filter withheld it")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise InvalidResponseError(f"model {model}: the message's content is not text")
    # PostgreSQL's text holds no NUL: one in a model's output would fail every write of it,
    # and its delivery for good; U+FFFD keeps the mark where it was.
    text = (content or "").replace("\x00", "\ufffd").strip()
    if not text and reason not in NORMAL_FINISHES:
        # Nothing said, and no sign that the model ended its answer: not an answer to score.
        raise InvalidResponseError(
            f"model {model}: empty content with finish_reason {reason or 'missing'}"
        )
    usage = data.get("usage")
    return ModelAnswer(
        text=text,
        finish_reason=reason,
        prompt_tokens=_count(usage, "prompt_tokens"),
        completion_tokens=_count(usage, "completion_tokens"),
    )


def _count(usage: object, name: str) -> int | None:
    value = usage.get(name) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
