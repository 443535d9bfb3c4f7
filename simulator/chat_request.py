"""The body of POST /v1/chat/completions: parsed and checked, or refused with a reason."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["BadRequest", "ChatRequest", "parse_chat_request"]


class BadRequest(Exception):
    """The request cannot be served as sent; becomes a 400 with Together's error shape."""


@dataclass(frozen=True)
class ChatRequest:
    """The fields of a chat-completions body the simulator reads (others are ignored)."""

    model: str
    messages: list[Any]  # checked further by conversation.parse_messages
    temperature: float
    max_tokens: int | None
    seed: int | None


def parse_chat_request(body: bytes) -> ChatRequest:
    """The request in `body`, or BadRequest naming the first field that is wrong."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(f"request body is not valid JSON: {error}") from error
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("`model` is required and must be a string")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("`messages` is required and must be a non-empty list")
    if payload.get("stream"):
        raise BadRequest("`stream` is not supported by the simulator")
    temperature = payload.get("temperature")
    if temperature is None:
        temperature = 0.0
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise BadRequest("`temperature` must be a number >= 0")
    max_tokens = payload.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise BadRequest("`max_tokens` must be a positive integer")
    seed = payload.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadRequest("`seed` must be an integer")
    return ChatRequest(model, messages, float(temperature), max_tokens, seed)
