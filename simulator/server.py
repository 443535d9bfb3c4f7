"""A local Together-compatible chat-completions server for tests and benchmarks.

The HTTP layer only: requests go to simulator.handler's SimHandler, which decides every
answer. Thread per connection (HTTP/1.1 keep-alive): simulated latency is a sleep, so 64+
concurrent requests cost threads, not CPU. Endpoints: POST /v1/chat/completions,
GET /v1/models, GET /sim/stats, POST /sim/reset, GET /health.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from evalfleet.simulator import protocol
from evalfleet.simulator.batches import BatchSimConfig
from evalfleet.simulator.chat_request import BadRequest
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.handler import SimHandler, SimRequest, SimResponse, json_response
from evalfleet.simulator.http_body import read_body
from evalfleet.startstop import StartStop

__all__ = ["SimServer"]

logger = logging.getLogger(__name__)

_IDLE_CONNECTION_TIMEOUT_S = 120.0
# How often the accept loop checks for stop(): the upper bound on stop() latency.
_POLL_INTERVAL_S = 0.05


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a sleeping request must never keep the process alive
    request_queue_size = 512  # bursts of new connections from many workers at once
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: SimHandler) -> None:
        self.handler = handler
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _RequestHandler)

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


class _RequestHandler(BaseHTTPRequestHandler):
    """Adapts one HTTP/1.1 connection to the server's SimHandler."""

    protocol_version = "HTTP/1.1"
    server_version = "evalfleet-sim/0.1"
    timeout = _IDLE_CONNECTION_TIMEOUT_S
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK
    # adds ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        logger.debug("%s - " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve(b"")

    def do_PUT(self) -> None:  # the upload URL POST /v1/files redirects to
        self.do_POST()

    def do_POST(self) -> None:
        try:
            body = read_body(self.headers, self.rfile)
        except BadRequest as error:
            self.close_connection = True  # the stream position is unknown now
            self._send(json_response(400, protocol.error_body(str(error), "invalid_request_error")))
            return
        self._serve(body)

    def _serve(self, body: bytes) -> None:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            headers.setdefault(name, value)  # the first of repeated headers, as headers.get
        handler = cast(_HTTPServer, self.server).handler
        response = handler.handle(SimRequest(self.command, self.path, headers, body))
        if response is None:
            self.close_connection = True  # hang up without a status line
            return
        self._send(response)

    def _send(self, response: SimResponse) -> None:
        self.send_response(response.status, HTTPStatus(response.status).phrase)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.cut_at is not None:
            # The "cut" fault: part of the body, then the connection closes under the client.
            self.wfile.write(response.body[: response.cut_at])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(response.body)


class SimServer(StartStop):
    """The simulator bound to `config.host:config.port` (port 0: a free one).

    The socket is bound on construction, so `port` and `base_url` are known at once;
    `start()` serves from a daemon thread, `serve_forever()` from the caller's.
    """

    def __init__(self, config: SimConfig, batch: BatchSimConfig | None = None) -> None:
        self._config = config
        self._handler = SimHandler(config, batch)
        self._httpd = _HTTPServer((config.host, config.port), self._handler)
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
        self._handler.stop()
        if self._serving:
            self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        logger.info("simulator at %s stopped", self.base_url)

    def stats(self) -> dict[str, Any]:
        """The same counters as GET /sim/stats."""
        return self._handler.stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters and refill the rate-limit buckets (as POST /sim/reset)."""
        self._handler.reset()
