"""JSON bodies in the shapes Together returns (and the `together` 3.x client parses)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MALFORMED_BODY",
    "completion_body",
    "context_length_error",
    "error_body",
    "invalid_api_key_error",
    "model_not_found_error",
    "models_body",
    "rate_limit_error",
    "server_error",
    "service_unavailable_error",
]

# A truncated completion: what a proxy cutting a response short would deliver.
MALFORMED_BODY = b'{"id": "sim-malformed", "object": "chat.completion", "choices": [{"mess'


def completion_body(
    model: str,
    content: str,
    prompt_tokens: int,
    completion_tokens: int,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """A non-streaming chat completion with one choice."""
    return {
        "id": f"sim-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "prompt": [],
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "logprobs": None,
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def models_body(models: Mapping[str, str], context_lengths: Mapping[str, int]) -> list[Any]:
    """GET /v1/models: a bare JSON list, as Together returns it."""
    created = int(time.time())
    return [
        {
            "id": name,
            "object": "model",
            "created": created,
            "type": "chat",
            "display_name": f"Simulated {kind} reader ({name})",
            "organization": "evalfleet",
            "link": "",
            "license": "",
            "context_length": context_lengths[name],
            "pricing": {"input": 0, "output": 0, "hourly": 0, "base": 0, "finetune": 0},
        }
        for name, kind in models.items()
    ]


def error_body(
    message: str, error_type: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """Together's error envelope."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def model_not_found_error(model: str) -> dict[str, Any]:
    return error_body(
        f"Unable to access model {model}. Please visit https://api.together.ai/models "
        "to view the list of supported models.",
        "invalid_request_error",
        code="model_not_found",
    )


def invalid_api_key_error() -> dict[str, Any]:
    return error_body("Invalid API key provided", "invalid_request_error", code="invalid_api_key")


def context_length_error(limit: int, prompt_tokens: int, max_tokens: int) -> dict[str, Any]:
    return error_body(
        f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= {limit}. "
        f"Given: {prompt_tokens} `inputs` tokens and {max_tokens} `max_new_tokens`",
        "invalid_request_error",
    )


def rate_limit_error(model: str, limit_per_s: float) -> dict[str, Any]:
    return error_body(
        f"You have exceeded the rate limit for model {model} "
        f"({limit_per_s:g} requests per second). Please slow down and retry later.",
        "rate_limit_exceeded",
        code="rate_limit_exceeded",
    )


def service_unavailable_error() -> dict[str, Any]:
    return error_body(
        "The server is overloaded or not ready yet. Please try again later.",
        "service_unavailable",
    )


def server_error() -> dict[str, Any]:
    return error_body("Internal server error (simulated).", "server_error")
