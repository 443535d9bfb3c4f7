"""Reading a request body off an HTTP/1.1 stream: Content-Length or chunked, size-capped."""

from __future__ import annotations

from email.message import Message
from io import BufferedIOBase

from evalfleet.simulator.chat_request import BadRequest

__all__ = ["MAX_BODY_BYTES", "read_body"]

MAX_BODY_BYTES = 32 * 1024 * 1024


def read_body(headers: Message, stream: BufferedIOBase) -> bytes:
    """The body announced by `headers`; BadRequest if its framing cannot be trusted."""
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        return _read_chunked(stream)
    try:
        length = int(headers.get("Content-Length") or 0)
    except ValueError as error:
        raise BadRequest("Content-Length is not a number") from error
    if not 0 <= length <= MAX_BODY_BYTES:
        raise BadRequest(f"request body must be 0..{MAX_BODY_BYTES} bytes")
    return stream.read(length)


def _read_chunked(stream: BufferedIOBase) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = stream.readline(1024).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError as error:
            raise BadRequest("malformed chunked body") from error
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        total += size
        if total > MAX_BODY_BYTES:
            raise BadRequest(f"request body must be 0..{MAX_BODY_BYTES} bytes")
        chunks.append(stream.read(size))
        stream.readline(1024)
