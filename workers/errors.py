"""API failures classified once, as values (docs/architecture.md, D5); workers/retry_policy.py
says who retries each kind."""

from __future__ import annotations

from enum import StrEnum

import together

from evalfleet.schema.settings import Settings
from evalfleet.workers.connection_cause import connection_cause


class InvalidResponseError(Exception):
    """A 200 whose body is no chat completion: not JSON, no `choices`, no message. The
    endpoint (or a proxy before it) failed, not the model: TRANSIENT, never scored
    (docs/architecture.md, "Retry policy")."""


class ContentFilteredError(Exception):
    """The endpoint's content filter withheld the answer (finish_reason `content_filter`).
    Asking again gets the same refusal, so it is FAIL_TURN: the turn fails with this reason
    and is never scored (docs/architecture.md, "Retry policy")."""


class Decision(StrEnum):
    RATE_LIMITED = "rate_limited"  # 429: back off, retry later
    TRANSIENT = "transient"  # 5xx, timeout, connection (cut too), invalid body: retry later
    STOP_RUN = "stop_run"  # 401/403: configuration error, nothing will work
    FAIL_MODEL = "fail_model"  # 404: unknown model, every item of that model fails
    FAIL_TURN = "fail_turn"  # 400/422, content filter: this request fails for good


def classify(exc: BaseException) -> Decision:
    if isinstance(exc, together.RateLimitError):
        return Decision.RATE_LIMITED
    if isinstance(exc, together.AuthenticationError | together.PermissionDeniedError):
        return Decision.STOP_RUN
    if isinstance(exc, together.NotFoundError):
        return Decision.FAIL_MODEL
    if isinstance(
        exc, together.BadRequestError | together.UnprocessableEntityError | ContentFilteredError
    ):
        return Decision.FAIL_TURN
    if isinstance(exc, together.APIStatusError):
        return classify_status(exc.status_code)
    if isinstance(exc, InvalidResponseError):
        return Decision.TRANSIENT  # a gateway's glitch clears; if not, the item fails with it
    # Connection errors (refused, reset, cut mid-body), timeouts, and anything unforeseen:
    # retried, and reported with its error if it never clears. An empty answer is no error:
    # it is the model's (workers/answer_body.py).
    return Decision.TRANSIENT


def classify_status(status: int | None) -> Decision:
    """An HTTP status as the exceptions above are classified: also a batch's error line."""
    if status is None:
        return Decision.TRANSIENT
    known = {
        429: Decision.RATE_LIMITED, 401: Decision.STOP_RUN, 403: Decision.STOP_RUN,
        404: Decision.FAIL_MODEL, 400: Decision.FAIL_TURN, 422: Decision.FAIL_TURN,
    }  # fmt: skip
    if status in known:
        return known[status]
    return Decision.TRANSIENT if status >= 500 or status in (408, 409) else Decision.FAIL_TURN


def describe(exc: BaseException) -> str:
    """A one-line description safe to store and show: status and message, never headers."""
    status = getattr(exc, "status_code", None)
    message = " ".join(str(exc).split())[:300]
    if isinstance(exc, together.APIConnectionError):
        # the SDK says only "Connection error."; the cause (refused, DNS...) is in its chain
        cause = connection_cause(exc)
        message = f"{message} ({cause})" if cause else message
    prefix = f"{type(exc).__name__} ({status})" if status else type(exc).__name__
    return f"{prefix}: {message}" if message else prefix


def redact(text: str, settings: Settings) -> str:
    """Belt and braces: the API key never reaches the database or a log line (D9)."""
    key = settings.together_api_key
    secret = key.get_secret_value() if key else ""
    return text.replace(secret, "[redacted]") if len(secret) >= 8 else text
