"""A finished batch's output and error files as one outcome per custom_id: an answer, or a
failure classified as the synchronous path classifies it (workers/errors.py, D5)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from evalfleet.workers.api import Completion, completion_from_body
from evalfleet.workers.errors import (
    ContentFilteredError,
    Decision,
    InvalidResponseError,
    classify,
    classify_status,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineFailure:
    decision: Decision
    reason: str


@dataclass(frozen=True)
class LineOutcome:
    completion: Completion | None
    failure: LineFailure | None = None


def read_outcomes(output: bytes, errors: bytes, model: str) -> dict[str, LineOutcome]:
    """Outcomes by custom_id. Output lines carry the chat-completion body (OpenAI's and
    Together's `response.body`, or `body`); error lines an `error` (its `code` or the
    response's `status_code` classifies it). A custom_id seen twice keeps its answer."""
    outcomes: dict[str, LineOutcome] = {}
    for content in (output, errors):
        for number, raw in enumerate(content.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                logger.warning("batch file line %s is not JSON: skipped", number)
                continue
            name = line.get("custom_id") if isinstance(line, dict) else None
            if not isinstance(name, str):
                logger.warning("batch file line %s has no custom_id: skipped", number)
                continue
            outcome = line_outcome(line, model)
            if name not in outcomes or outcomes[name].completion is None:
                outcomes[name] = outcome
    return outcomes


def line_outcome(line: dict[str, object], model: str) -> LineOutcome:
    response = line.get("response")
    response = response if isinstance(response, dict) else {}
    status = response.get("status_code")
    error = line.get("error")
    if error or (isinstance(status, int) and status >= 400):
        return LineOutcome(None, _failure(error, status if isinstance(status, int) else None))
    body = response.get("body", line.get("body"))
    try:
        return LineOutcome(completion_from_body(body, model, latency_ms=0.0))
    except (InvalidResponseError, ContentFilteredError) as exc:  # as a synchronous body is
        return LineOutcome(None, LineFailure(classify(exc), f"{type(exc).__name__}: {exc}"))


def _failure(error: object, status: int | None) -> LineFailure:
    message = ""
    if isinstance(error, dict):
        code = error.get("code", error.get("status_code"))
        if status is None and isinstance(code, int | str) and str(code).isdigit():
            status = int(code)
        message = str(error.get("message") or "")
    elif error:
        message = str(error)
    message = " ".join(message.split())[:300]
    prefix = f"batch error ({status})" if status else "batch error"
    return LineFailure(classify_status(status), f"{prefix}: {message}" if message else prefix)
