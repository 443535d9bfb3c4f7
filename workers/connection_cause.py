"""Why a connection failed, in a few words: the `together` client says only "Connection
error." (its APIConnectionError); the reason is in the chain of exceptions under it."""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

# Phrases a stored reason may hold; aggregator/health.py reads them back.
REFUSED = "connection refused"
DNS_FAILED = "DNS lookup failed"
TIMEOUT = "timeout"
RESET = "connection reset"
CUT = "connection cut mid-response"  # status line and headers came, the body did not end
UNREACHABLE = "host unreachable"

_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH}
# httpx's ReadTimeout, ConnectTimeout..., together's APITimeoutError: named, not imported,
# so that this module needs nothing beyond the standard library.
_TIMEOUT_NAMES = ("Timeout", "TimeoutError")
# httpx's RemoteProtocolError when the server closes before the Content-Length is read.
_CUT_PHRASES = ("incomplete message body", "complete message body", "incompleteread")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and the ones it was raised from (or while handling), once each."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def connection_cause(exc: BaseException) -> str | None:
    """'connection refused', 'DNS lookup failed', 'TLS ...', 'timeout', ...; None when the
    chain holds no network cause (an HTTP status, a malformed body)."""
    for link in _chain(exc):
        if isinstance(link, ConnectionRefusedError):
            return REFUSED
        if isinstance(link, socket.gaierror):
            return DNS_FAILED
        if isinstance(link, ssl.SSLCertVerificationError):
            return f"TLS certificate rejected ({link.verify_message})"
        if isinstance(link, ssl.SSLError):
            hint = ": a plain http:// server?" if link.reason == "WRONG_VERSION_NUMBER" else ""
            return f"TLS handshake failed ({link.reason or link.strerror}{hint})"
        if isinstance(link, TimeoutError) or type(link).__name__.endswith(_TIMEOUT_NAMES):
            return TIMEOUT
        if isinstance(link, ConnectionResetError):
            return RESET
        if type(link).__name__ == "RemoteProtocolError" and any(
            phrase in str(link).lower() for phrase in _CUT_PHRASES
        ):
            return CUT
        if isinstance(link, OSError) and link.errno in _UNREACHABLE_ERRNOS:
            return UNREACHABLE
    return None
