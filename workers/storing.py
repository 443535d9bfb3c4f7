"""Turn outcomes as answer rows and cache rows, handed to the process's group commit."""

from __future__ import annotations

import logging

from evalfleet.schema.lifecycle import ItemClose
from evalfleet.schema.models import utcnow
from evalfleet.workers import cache
from evalfleet.workers.api import Completion
from evalfleet.workers.delivery import Work
from evalfleet.workers.errors import Decision, describe, redact
from evalfleet.workers.resources import Resources
from evalfleet.workers.turns import TurnOutcome

logger = logging.getLogger(__name__)


def store_outcomes(
    resources: Resources,
    work: Work,
    outcomes: list[TurnOutcome],
    attempt: int,
    urgent: bool,
    close: ItemClose | None = None,
) -> bool:
    """The answers, the final errors of turns that failed for good (a 400), and the fresh
    responses in the cache, committed together (with other items' rows: group_commit; at
    once when `urgent`, without waiting for company), with the item's close when `close`
    is given. Retryable failures store nothing. True when the close may have been the run's
    last (lifecycle.close_each)."""
    answers, responses = [], []
    for outcome in outcomes:
        completion, failure = outcome.completion, outcome.failure
        error = None
        if failure is not None:
            if failure.decision is not Decision.FAIL_TURN:
                continue
            error = redact(describe(failure.cause), resources.settings)
            logger.warning(
                "run %s model %s story %s turn %s: %s",
                work.run_id, work.label, work.story_id, outcome.turn, error,
            )  # fmt: skip
        answers.append(
            answer_values(
                work.run_id,
                work.label,
                work.story_id,
                outcome.turn,
                completion,
                attempt,
                error,
                outcome.cached,
                work.sample,
            )  # fmt: skip
        )
        if completion is not None and outcome.cache_key is not None:
            responses.append(cache.cache_row(outcome.cache_key, work.model, completion))
    if not answers and close is None:
        return False
    return resources.writer.write(answers, responses, urgent, close)


def answer_values(
    run_id: int,
    label: str,
    story_id: int,
    turn: int,
    completion: Completion | None,
    attempt: int,
    error: str | None,
    cached: bool,
    sample: int = 0,
) -> dict[str, object]:
    """One answer row (D2: upserted on its key); the batch poller writes the same rows."""
    return {
        "run_id": run_id,
        "model_label": label,
        "story_id": story_id,
        "turn": turn,
        "sample": sample,
        "text": completion.text if completion else None,
        "finish_reason": completion.finish_reason if completion else None,
        "prompt_tokens": completion.prompt_tokens if completion else None,
        "completion_tokens": completion.completion_tokens if completion else None,
        "latency_ms": completion.latency_ms if completion else None,
        "attempts": attempt,
        "cached": cached,
        "error": error,
        "created_at": utcnow(),
    }
