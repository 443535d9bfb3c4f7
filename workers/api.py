"""The chat-completions call through the official `together` client."""

from __future__ import annotations

import functools
import math
import ssl
import time
from dataclasses import dataclass

import httpx
import together

from evalfleet.schema.settings import Settings
from evalfleet.workers.answer_body import read_answer, read_json


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    limit_rpm: float | None = None  # the provider's stated request limit, if it said one


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One per process, shared by every thread's client: each would load the CA bundle."""
    return httpx.create_ssl_context()


def make_client(settings: Settings, base_url: str | None, connections: int) -> together.Together:
    """A client whose connection pool holds `connections`: the requests it makes at once."""
    return together.Together(
        api_key=settings.api_key_for(base_url),
        base_url=base_url,
        max_retries=settings.api_max_retries,
        timeout=settings.api_timeout_s,
        http_client=together.DefaultHttpxClient(
            verify=ssl_context(),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=settings.api_timeout_s,
        ),
    )


def complete(
    client: together.Together,
    model: str,
    messages: list[dict[str, str]],
    temperature: float,
    max_tokens: int,
    seed: int | None,
) -> Completion:
    """Ask once (the SDK retries 408/409/429/5xx itself); the answer as read_answer reads it
    (an empty answer is the model's; a body that is no chat completion raises).

    The SDK's own create() sends the request (its URL, key, retries and error types), but
    the messages go in `extra_body`, which it sends as given, and the raw response's JSON
    is read for the four fields used here (workers/answer_body.py): the per-message type
    transform of the request and the typed model of the response cost a third of the SDK's
    CPU per request, on the path bench/throughput.py finds CPU-bound. The wire is the same
    as create(messages=...) sends (tests/unit/workers/test_api.py)."""
    started = time.perf_counter()
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[],
        extra_body={"messages": messages},
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed if seed is not None else together.omit,
    )
    latency_ms = (time.perf_counter() - started) * 1000
    return completion_from_body(
        read_json(raw.http_response, model), model, latency_ms, limit_rpm(raw.headers)
    )


def completion_from_body(
    data: object, model: str, latency_ms: float, stated_rpm: float | None = None
) -> Completion:
    """A chat-completion response body as the answer it holds (a synchronous response, or
    one line of a batch's output file); InvalidResponseError / ContentFilteredError if it
    holds none (workers/answer_body.py)."""
    answer = read_answer(data, model)
    return Completion(
        text=answer.text,
        finish_reason=answer.finish_reason,
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        latency_ms=latency_ms,
        limit_rpm=stated_rpm,
    )


def header_number(headers: httpx.Headers | None, name: str) -> float | None:
    """A header's value as a finite number >= 0; None when it is absent or malformed."""
    value = headers.get(name) if headers is not None else None
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return max(0.0, number) if number is not None and math.isfinite(number) else None


def limit_rpm(headers: httpx.Headers | None) -> float | None:
    """The request limit a response states in `x-ratelimit-limit`, which Together gives in
    requests per second (on every response, 429s included)."""
    per_second = header_number(headers, "x-ratelimit-limit")
    return per_second * 60 if per_second else None
