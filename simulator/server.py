"""A local Together-compatible chat-completions server for tests and benchmarks.

Thread per connection (HTTP/1.1 keep-alive): simulated latency is a sleep, so 64+
concurrent requests cost threads, not CPU. Endpoints: POST /v1/chat/completions,
GET /v1/models, GET /sim/stats, POST /sim/reset, GET /health.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import socket
import sys
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from evalfleet.simulator import protocol
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.conversation import (
    MessageError,
    greedy_rng,
    parse_messages,
    prompt_tokens,
    sampling_rng,
)
from evalfleet.simulator.faults import FaultInjector
from evalfleet.simulator.ratelimit import RateDecision, RateLimiter
from evalfleet.simulator.reader import answer
from evalfleet.simulator.stats import SimStats
from evalfleet.simulator.text import approx_tokens
from evalfleet.startstop import StartStop

__all__ = ["SimServer"]

logger = logging.getLogger(__name__)

_MAX_BODY_BYTES = 32 * 1024 * 1024
_IDLE_CONNECTION_TIMEOUT_S = 120.0
# How often the accept loop checks for stop(): the upper bound on stop() latency.
_POLL_INTERVAL_S = 0.05


class _BadRequest(Exception):
    """The request cannot be served as sent; becomes a 400 with Together's error shape."""


@dataclass
class _Outcome:
    """What one chat request came to, for the stats."""

    model: str | None = None
    status: int | None = None
    fault: str | None = None
    rate_limited: bool = False
    recorded: bool = False


@dataclass(frozen=True)
class _ChatRequest:
    model: str
    messages: list[Any]
    temperature: float
    max_tokens: int | None
    seed: int | None


class _App:
    """State shared by every handler thread of one server."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.faults = FaultInjector(config)
        self.limiter = RateLimiter(config.rpm_limits(), burst=config.rate_burst)
        self.stats = SimStats()
        self.context_lengths = config.context_lengths()
        self.stopping = threading.Event()

    def reset(self) -> None:
        self.stats.reset()
        self.limiter.reset()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a sleeping request must never keep the process alive
    request_queue_size = 512  # bursts of new connections from many workers at once
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: _App) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Drop open keep-alive connections, whose threads would otherwise idle on."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            # Clients that hang up (timeouts, cancelled runs) are routine here.
            logger.debug("connection from %s dropped: %s", client_address, error)
        else:
            logger.exception("simulator failed on a request from %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "evalfleet-sim/0.1"
    timeout = _IDLE_CONNECTION_TIMEOUT_S
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK
    # adds ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    _outcome: _Outcome | None = None

    @property
    def _app(self) -> _App:
        return cast(_HTTPServer, self.server).app

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        logger.debug("%s - " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            if self._authorized():
                config = self._app.config
                self._send_json(200, protocol.models_body(config.models, self._app.context_lengths))
            else:
                self._send_json(401, protocol.invalid_api_key_error())
        elif path == "/sim/stats":
            self._send_json(200, self._app.stats.snapshot())
        elif path == "/health":
            self._send_json(200, {"status": "ok"})
        else:
            self._send_not_found(path)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            body = self._read_body()
        except _BadRequest as error:
            self.close_connection = True  # the stream position is unknown now
            self._send_json(400, protocol.error_body(str(error), "invalid_request_error"))
            return
        if path == "/v1/chat/completions":
            outcome = self._outcome = _Outcome()
            self._app.stats.begin()
            try:
                self._chat(body, outcome)
            except Exception as error:
                if isinstance(error, ConnectionError) or outcome.recorded:
                    raise  # the client is gone or has its answer; handle_error logs it
                logger.exception("simulator failed to answer for model %s", outcome.model)
                self._send_json(500, protocol.server_error())
            finally:
                self._outcome = None
                if not outcome.recorded:  # no answer was sent (reset fault, shutdown, error)
                    self._record(outcome)
        elif path == "/sim/reset":
            self._app.reset()
            self._send_json(200, {"status": "reset"})
        else:
            self._send_not_found(path)

    def _chat(self, body: bytes, outcome: _Outcome) -> None:
        app = self._app
        if not self._authorized():
            self._send_json(401, protocol.invalid_api_key_error())
            return
        try:
            request = _parse_chat_request(body)
            conversation = parse_messages(request.messages)
        except (_BadRequest, MessageError) as error:
            self._send_json(400, protocol.error_body(str(error), "invalid_request_error"))
            return
        outcome.model = request.model
        kind = app.config.models.get(request.model)
        if kind is None:
            self._send_json(404, protocol.model_not_found_error(request.model))
            return
        tokens_in = prompt_tokens(request.messages)
        limit = app.context_lengths[request.model]
        if tokens_in + (request.max_tokens or 0) > limit:
            too_long = protocol.context_length_error(limit, tokens_in, request.max_tokens or 0)
            self._send_json(400, too_long)
            return

        decision = app.limiter.acquire(request.model)
        if decision is not None and not decision.allowed:
            outcome.rate_limited = True
            self._send_rate_limited(request.model, decision)
            return
        rate_headers = decision.headers() if decision is not None else {}
        fault = app.faults.draw_fault()
        outcome.fault = fault
        if fault == "429":
            # Injected 429s answer at once, like a real gateway's limiter.
            refused = RateDecision(
                allowed=False,
                limit_per_s=decision.limit_per_s if decision is not None else 1.0,
                remaining=0,
                reset_s=1,
                retry_after_s=1,
            )
            if decision is None:  # no limit configured: state none (x-ratelimit-limit)
                overloaded = protocol.rate_limit_error(request.model, refused.limit_per_s)
                self._send_json(429, overloaded, {"retry-after": str(refused.retry_after_s)})
                return
            self._send_rate_limited(request.model, refused)
            return

        if not self._sleep(app.faults.latency_s()):
            return
        if fault == "timeout" and not self._sleep(app.config.timeout_s):
            return
        if fault == "reset":
            self.close_connection = True  # hang up without a status line
            return
        if fault == "503":
            overloaded = protocol.service_unavailable_error()
            self._send_json(503, overloaded, rate_headers)
            return
        if fault == "500":
            self._send_json(500, protocol.server_error(), rate_headers)
            return
        if fault == "malformed":
            self._send_bytes(200, protocol.MALFORMED_BODY, rate_headers)
            return

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
        if fault == "empty":
            content = ""
        finish_reason = "stop"
        if request.max_tokens is not None and approx_tokens(content) > request.max_tokens:
            content = " ".join(content.split()[: request.max_tokens])
            finish_reason = "length"
        completion = protocol.completion_body(
            request.model, content, tokens_in, approx_tokens(content), finish_reason
        )
        self._send_json(200, completion, rate_headers)

    def _record(self, outcome: _Outcome) -> None:
        outcome.recorded = True
        self._app.stats.finish(outcome.model, outcome.status, outcome.fault, outcome.rate_limited)

    def _sleep(self, seconds: float) -> bool:
        """Wait, waking early on shutdown; False (connection dropped) if stopping."""
        if seconds > 0:
            self._app.stopping.wait(seconds)
        if self._app.stopping.is_set():
            self.close_connection = True
            return False
        return True

    def _authorized(self) -> bool:
        required = self._app.config.required_api_key
        if required is None:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        given = key.strip() if scheme.lower() == "bearer" else ""
        return hmac.compare_digest(given.encode(), required.encode())

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as error:
            raise _BadRequest("Content-Length is not a number") from error
        if not 0 <= length <= _MAX_BODY_BYTES:
            raise _BadRequest(f"request body must be 0..{_MAX_BODY_BYTES} bytes")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError as error:
                raise _BadRequest("malformed chunked body") from error
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY_BYTES:
                raise _BadRequest(f"request body must be 0..{_MAX_BODY_BYTES} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send_rate_limited(self, model: str, decision: RateDecision) -> None:
        self._send_json(
            429, protocol.rate_limit_error(model, decision.limit_per_s), decision.headers()
        )

    def _send_not_found(self, path: str) -> None:
        error = protocol.error_body(f"Not found: {path}", "invalid_request_error", "not_found")
        self._send_json(404, error)

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        self._send_bytes(status, data, headers)

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        if self._outcome is not None:
            # Count before the client can read the answer, so that stats read right
            # after a response include it.
            self._outcome.status = status
            self._record(self._outcome)
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _parse_chat_request(body: bytes) -> _ChatRequest:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _BadRequest(f"request body is not valid JSON: {error}") from error
    if not isinstance(payload, dict):
        raise _BadRequest("request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise _BadRequest("`model` is required and must be a string")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("`messages` is required and must be a non-empty list")
    if payload.get("stream"):
        raise _BadRequest("`stream` is not supported by the simulator")
    temperature = payload.get("temperature")
    if temperature is None:
        temperature = 0.0
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise _BadRequest("`temperature` must be a number >= 0")
    max_tokens = payload.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise _BadRequest("`max_tokens` must be a positive integer")
    seed = payload.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _BadRequest("`seed` must be an integer")
    return _ChatRequest(model, messages, float(temperature), max_tokens, seed)


class SimServer(StartStop):
    """The simulator bound to `config.host:config.port` (port 0: a free one).

    The socket is bound on construction, so `port` and `base_url` are known at once;
    `start()` serves from a daemon thread, `serve_forever()` from the caller's.
    """

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self._app = _App(config)
        self._httpd = _HTTPServer((config.host, config.port), self._app)
        self._thread: threading.Thread | None = None
        self._serving = False
        self._stopped = False

    @property
    def config(self) -> SimConfig:
        return self._config

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT`, host only: the `together` SDK appends /v1/chat/completions."""
        host = self._config.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Serve in a background daemon thread; returns at once."""
        if self._thread is not None or self._stopped:
            raise RuntimeError("SimServer can be started once")
        self._serving = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_S},
            name=f"evalfleet-sim-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info(
            "simulator serving at %s (models: %s)", self.base_url, list(self._config.models)
        )

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop()` (from another thread) or Ctrl-C."""
        if self._thread is not None or self._stopped:
            raise RuntimeError("SimServer can be started once")
        self._serving = True
        logger.info(
            "simulator serving at %s (models: %s)", self.base_url, list(self._config.models)
        )
        self._httpd.serve_forever(poll_interval=_POLL_INTERVAL_S)

    def stop(self) -> None:
        """Stop serving, wake sleeping requests, drop connections, free the port."""
        if self._stopped:
            return
        self._stopped = True
        self._app.stopping.set()
        if self._serving:
            self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        logger.info("simulator at %s stopped", self.base_url)

    def stats(self) -> dict[str, Any]:
        """The same counters as GET /sim/stats."""
        return self._app.stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters and refill the rate-limit buckets (as POST /sim/reset)."""
        self._app.reset()
