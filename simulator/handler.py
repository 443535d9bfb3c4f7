"""The simulator's request handling, without sockets (docs/architecture.md, "Simulator").

`SimHandler.handle` turns one parsed request (method, path, headers, body bytes) into a
response: routing, the API key, the chat body's checks, context length, rate limits,
injected faults, latency (a base plus a per-token share) and the reader's answer, as the
model's decoding shapes it (simulator.generation). Latency is a sleep on the caller's
thread, so the HTTP layer (simulator.server) gives each connection a thread; this module
owns no sockets and starts no threads.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from evalfleet.simulator import protocol
from evalfleet.simulator.chat_request import BadRequest, ChatRequest, parse_chat_request
from evalfleet.simulator.config import JUDGE_KIND, SimConfig
from evalfleet.simulator.conversation import (
    Conversation,
    MessageError,
    greedy_rng,
    parse_messages,
    prompt_tokens,
    sampling_rng,
)
from evalfleet.simulator.faults import FaultInjector
from evalfleet.simulator.generation import generation_s, style_answer
from evalfleet.simulator.judge import judge_reply
from evalfleet.simulator.ratelimit import RateDecision, RateLimiter
from evalfleet.simulator.reader import answer
from evalfleet.simulator.stats import SimStats
from evalfleet.simulator.text import approx_tokens

__all__ = ["SimHandler", "SimRequest", "SimResponse", "json_response"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimRequest:
    """One HTTP request as the transport parsed it."""

    method: str
    path: str  # as sent, query string included
    headers: Mapping[str, str] = field(default_factory=dict)  # names in any case
    body: bytes = b""


@dataclass(frozen=True)
class SimResponse:
    """What to send back; the transport adds the framing (Content-Length)."""

    status: int
    headers: dict[str, str]
    body: bytes
    # The "cut" fault: send only this many bytes of the body (Content-Length says all of
    # them), then close the connection.
    cut_at: int | None = None


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> SimResponse:
    """`body` as compact JSON (bytes go as they are), with `headers` after the Content-Type."""
    if isinstance(body, bytes):
        data = body  # the "malformed" fault's truncated JSON
    else:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return SimResponse(status, {"Content-Type": "application/json", **(headers or {})}, data)


@dataclass
class _Outcome:
    """What one chat request came to, for the stats."""

    model: str | None = None
    fault: str | None = None
    rate_limited: bool = False
    seed: int | None = None  # the request's sampling seed


class SimHandler:
    """The endpoints of one simulator; thread-safe, shared by every connection's thread.

    `handle` returns None when the simulator hangs up without answering (the "reset"
    fault, or `stop()` during a simulated wait): the transport closes the connection. A
    response with `cut_at` (the "cut" fault) is closed after that many bytes of its body.
    """

    def __init__(self, config: SimConfig, batch: Any = None) -> None:
        from evalfleet.simulator.batches import BatchService  # it builds on this module

        self.config = config
        self.batches = BatchService(self, batch)  # /v1/files, /v1/batches (a BatchSimConfig)
        self.faults = FaultInjector(config)
        self.limiter = RateLimiter(config.rpm_limits(), burst=config.rate_burst)
        self.stats = SimStats()
        self.context_lengths = config.context_lengths()
        self._stopping = threading.Event()

    def reset(self) -> None:
        """Zero the counters and refill the rate-limit buckets (POST /sim/reset)."""
        self.stats.reset()
        self.limiter.reset()

    def stop(self) -> None:
        """Wake requests sleeping out their latency; they, and any later, hang up."""
        self._stopping.set()

    def handle(self, request: SimRequest) -> SimResponse | None:
        """The response to `request`, after its simulated latency; None: hang up."""
        path = request.path.split("?", 1)[0].rstrip("/")
        if path.startswith(self.batches.paths):
            return self.batches.handle(request, path)
        if request.method == "GET":
            return self._get(path, request.headers)
        if request.method == "POST":
            return self._post(path, request)
        # http.server's own answer to a method without a do_* handler.
        message = f"Unsupported method ({request.method!r})"
        return json_response(501, protocol.error_body(message, "invalid_request_error"))

    def _get(self, path: str, headers: Mapping[str, str]) -> SimResponse:
        if path == "/v1/models":
            if not _authorized(self.config.required_api_key, headers):
                return json_response(401, protocol.invalid_api_key_error())
            models = protocol.models_body(self.config.models, self.context_lengths)
            return json_response(200, models)
        if path == "/sim/stats":
            return json_response(200, self.stats.snapshot())
        if path == "/health":
            return json_response(200, {"status": "ok"})
        return _not_found(path)

    def _post(self, path: str, request: SimRequest) -> SimResponse | None:
        if path == "/v1/chat/completions":
            return self._counted_chat(request)
        if path == "/sim/reset":
            self.reset()
            return json_response(200, {"status": "reset"})
        return _not_found(path)

    def _counted_chat(self, request: SimRequest) -> SimResponse | None:
        outcome = _Outcome()
        self.stats.begin()
        response: SimResponse | None = None
        try:
            response = self._chat(request, outcome)
        except Exception:
            # A bug in the simulator answers 500 rather than hanging up on the client.
            logger.exception("simulator failed to answer for model %s", outcome.model)
            response = json_response(500, protocol.server_error())
        finally:
            # Counted before the transport sends the answer, so that stats read right
            # after a response include it; status None: no answer (reset, shutdown).
            status = response.status if response is not None else None
            self.stats.finish(
                outcome.model, status, outcome.fault, outcome.rate_limited, outcome.seed
            )
        return response

    def _chat(self, http: SimRequest, outcome: _Outcome) -> SimResponse | None:
        if not _authorized(self.config.required_api_key, http.headers):
            return json_response(401, protocol.invalid_api_key_error())
        try:
            request = parse_chat_request(http.body)
            conversation = parse_messages(request.messages)
        except (BadRequest, MessageError) as error:
            return json_response(400, protocol.error_body(str(error), "invalid_request_error"))
        outcome.model, outcome.seed = request.model, request.seed
        kind = self.config.models.get(request.model)
        if kind is None:
            return json_response(404, protocol.model_not_found_error(request.model))
        tokens_in = prompt_tokens(request.messages)
        limit = self.context_lengths[request.model]
        if tokens_in + (request.max_tokens or 0) > limit:
            too_long = protocol.context_length_error(limit, tokens_in, request.max_tokens or 0)
            return json_response(400, too_long)

        decision = self.limiter.acquire(request.model)
        if decision is not None and not decision.allowed:
            outcome.rate_limited = True
            return _rate_limited(request.model, decision)
        rate_headers = decision.headers() if decision is not None else {}
        fault = self.faults.draw_fault()
        outcome.fault = fault
        if fault == "429":
            return _injected_429(request.model, decision)

        if not self._sleep(self.faults.latency_s()):
            return None
        if fault == "timeout" and not self._sleep(self.config.timeout_s):
            return None
        if fault == "reset":
            return None  # hang up without a status line
        if fault == "503":
            return json_response(503, protocol.service_unavailable_error(), rate_headers)
        if fault == "500":
            return json_response(500, protocol.server_error(), rate_headers)
        if fault == "malformed":
            return json_response(200, protocol.MALFORMED_BODY, rate_headers)

        content = self._reply(kind, request, conversation)
        # The tokens take their time once the reply is known: a long answer comes slower.
        per_token_ms = self.config.latency_ms_per_token
        if not self._sleep(generation_s(content, request.max_tokens, per_token_ms)):
            return None
        finish_reason = "stop"
        if request.max_tokens is not None and approx_tokens(content) > request.max_tokens:
            content = " ".join(content.split()[: request.max_tokens])
            finish_reason = "length"
        if fault == "content_filter":
            content, finish_reason = "", "content_filter"
        completion = protocol.completion_body(
            request.model, content, tokens_in, approx_tokens(content), finish_reason
        )
        if fault == "no_choices":
            completion["choices"] = []
        response = json_response(200, completion, rate_headers)
        if fault == "cut":
            return replace(response, cut_at=len(response.body) // 2)
        return response

    def _reply(self, kind: str, request: ChatRequest, conversation: Conversation) -> str:
        """The model's reply: a judge's grade, or a reader's answer as its decoding gives it."""
        if kind == JUDGE_KIND:
            return judge_reply(request.messages)
        content = answer(
            kind,
            conversation.story,
            conversation.question,
            greedy_rng(request.model, request.messages),
            request.temperature,
            history=conversation.history,
            sampling_rng=(
                sampling_rng(request.model, request.messages, request.seed, request.temperature)
                if request.temperature > 0
                else None
            ),
        )
        return style_answer(
            content, conversation.story, request.model, request.messages, self.config
        )

    def _sleep(self, seconds: float) -> bool:
        """Wait, waking early on stop(); False (hang up) if stopping."""
        if seconds > 0:
            self._stopping.wait(seconds)
        return not self._stopping.is_set()


def _authorized(required: str | None, headers: Mapping[str, str]) -> bool:
    if required is None:
        return True
    # The first Authorization header, its name in any case, as http.server reads it.
    header = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, key = header.partition(" ")
    given = key.strip() if scheme.lower() == "bearer" else ""
    return hmac.compare_digest(given.encode(), required.encode())


def _injected_429(model: str, decision: RateDecision | None) -> SimResponse:
    """An injected 429 answers at once, like a real gateway's limiter."""
    refused = RateDecision(
        allowed=False,
        limit_per_s=decision.limit_per_s if decision is not None else 1.0,
        remaining=0,
        reset_s=1,
        retry_after_s=1,
    )
    if decision is None:  # no limit configured: state none (x-ratelimit-limit)
        overloaded = protocol.rate_limit_error(model, refused.limit_per_s)
        return json_response(429, overloaded, {"retry-after": str(refused.retry_after_s)})
    return _rate_limited(model, refused)


def _rate_limited(model: str, decision: RateDecision) -> SimResponse:
    return json_response(
        429, protocol.rate_limit_error(model, decision.limit_per_s), decision.headers()
    )


def _not_found(path: str) -> SimResponse:
    error = protocol.error_body(f"Not found: {path}", "invalid_request_error", "not_found")
    return json_response(404, error)
