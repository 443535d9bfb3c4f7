"""Answer one item (one model over one story): each turn stored as it arrives, none paid twice."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from schema.db import session_scope, upsert
from schema.models import (
    OPEN_ITEM_STATES,
    Answer,
    Item,
    ItemState,
    Question,
    Run,
    RunState,
    Story,
    utcnow,
)
from schema.payloads import HistoryMode, RunConfig
from workers.api import Completion, complete
from workers.errors import Decision, classify, describe
from workers.prompts import build_messages
from workers.resources import Resources

logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """The item met a rate limit or transient failure; the task should retry it later."""

    def __init__(self, decision: Decision, reason: str) -> None:
        super().__init__(reason)
        self.decision = decision
        self.reason = reason


@dataclass(frozen=True)
class Work:
    """What one delivery of an item needs, read from SQL in one go."""

    item_id: int
    run_id: int
    label: str
    model: str
    story_id: int
    story_text: str
    config: RunConfig
    questions: tuple[tuple[int, str, tuple[str, ...]], ...]
    stored: dict[int, str | None]  # turn -> answer text (None: that turn failed for good)


def start_delivery(
    sessions: sessionmaker[Session], item_id: int, max_attempts: int
) -> tuple[int | None, Work | None]:
    """Count this delivery: (run id, work), the work None when there is nothing to do."""
    with session_scope(sessions) as session:
        item = session.get(Item, item_id, with_for_update=True)
        if item is None:
            logger.warning("item %s: not in the database, message dropped", item_id)
            return None, None
        run = session.get(Run, item.run_id)
        if run is None or item.state not in OPEN_ITEM_STATES:
            return item.run_id, None
        if run.state != RunState.RUNNING.value:
            item.state, item.finished_at = ItemState.FAILED.value, utcnow()
            item.last_error = item.last_error or f"run {run.id} stopped: {run.error}"
            return run.id, None
        item.attempts += 1
        if item.attempts > max_attempts:
            # Each delivery is counted before any work: a task that kills its worker every
            # time (task_reject_on_worker_lost) ends here instead of looping forever.
            item.state, item.finished_at = ItemState.FAILED.value, utcnow()
            item.last_error = f"gave up after {max_attempts} deliveries: {item.last_error or ''}"
            logger.error("run %s item %s: %s", item.run_id, item.id, item.last_error)
            return run.id, None
        item.state = ItemState.RUNNING.value
        item.started_at = item.started_at or utcnow()
        story = session.get_one(Story, item.story_id)
        config = RunConfig.model_validate(run.config)
        questions = session.scalars(
            select(Question).where(Question.story_id == story.id).order_by(Question.turn)
        ).all()
        stored = session.execute(
            select(Answer.turn, Answer.text).where(
                Answer.run_id == run.id,
                Answer.model_label == item.model_label,
                Answer.story_id == story.id,
            )
        ).all()
        return run.id, Work(
            item_id=item.id,
            run_id=run.id,
            label=item.model_label,
            model=config.models[item.model_label],
            story_id=story.id,
            story_text=story.text,
            config=config,
            questions=tuple((q.turn, q.text, tuple(q.references)) for q in questions),
            stored={row.turn: row.text for row in stored},
        )


def answer_turns(work: Work, resources: Resources, attempt: int) -> None:
    """Ask every turn not yet stored, in order; store each answer (or its final error) at once."""
    client = resources.client(work.config.base_url)
    own_answers = {turn: text for turn, text in work.stored.items() if text}
    for turn, _question, _references in work.questions:
        if turn in work.stored:
            continue  # answered by an earlier delivery: never pay twice
        messages = build_messages(
            work.story_text, work.questions, turn, work.config.history, own_answers
        )
        try:
            completion = complete(
                client,
                work.model,
                messages,
                work.config.temperature,
                work.config.max_tokens,
                work.config.seed,
            )
        except Exception as exc:  # classified below; anything unknown is retried as transient
            decision = classify(exc)
            reason = redact(describe(exc), resources)
            if decision is Decision.FAIL_TURN:
                logger.warning(
                    "run %s model %s story %s turn %s: %s",
                    work.run_id, work.label, work.story_id, turn, reason,
                )  # fmt: skip
                store_answer(resources.sessions, work, turn, None, attempt, error=reason)
                continue
            if decision in (Decision.RATE_LIMITED, Decision.TRANSIENT):
                raise RetryLater(decision, reason) from exc
            if decision is Decision.STOP_RUN:
                stop_run(resources.sessions, work.run_id, f"API refused the key: {reason}")
            else:
                fail_model(resources.sessions, work, f"model not found: {work.model}: {reason}")
            return
        store_answer(resources.sessions, work, turn, completion, attempt)
        if work.config.history is HistoryMode.MODEL:
            own_answers[turn] = completion.text
    finish_item(resources.sessions, work.item_id, ItemState.DONE, None)


def store_answer(
    sessions: sessionmaker[Session],
    work: Work,
    turn: int,
    completion: Completion | None,
    attempt: int,
    error: str | None = None,
) -> None:
    row = {
        "run_id": work.run_id,
        "model_label": work.label,
        "story_id": work.story_id,
        "turn": turn,
        "text": completion.text if completion else None,
        "finish_reason": completion.finish_reason if completion else None,
        "prompt_tokens": completion.prompt_tokens if completion else None,
        "completion_tokens": completion.completion_tokens if completion else None,
        "latency_ms": completion.latency_ms if completion else None,
        "attempts": attempt,
        "error": error,
        "created_at": utcnow(),
    }
    with session_scope(sessions) as session:
        upsert(session, Answer.__table__, [row], ("run_id", "model_label", "story_id", "turn"))


def finish_item(
    sessions: sessionmaker[Session], item_id: int, state: ItemState, error: str | None
) -> None:
    with session_scope(sessions) as session:
        session.execute(
            update(Item)
            .where(Item.id == item_id, Item.state.in_(OPEN_ITEM_STATES))
            .values(state=state.value, last_error=error, finished_at=utcnow())
        )


def record_retry(sessions: sessionmaker[Session], item_id: int, reason: str) -> None:
    """Hand the item back as pending, keeping why, until its retry arrives."""
    with session_scope(sessions) as session:
        session.execute(
            update(Item)
            .where(Item.id == item_id, Item.state.in_(OPEN_ITEM_STATES))
            .values(state=ItemState.PENDING.value, last_error=reason)
        )


def stop_run(sessions: sessionmaker[Session], run_id: int, reason: str) -> None:
    """A configuration error: stop the whole run once, with one clear message."""
    logger.error("run %s: stopped: %s", run_id, reason)
    with session_scope(sessions) as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.state == RunState.RUNNING.value)
            .values(state=RunState.FAILED.value, error=reason, finished_at=utcnow())
        )
        session.execute(
            update(Item)
            .where(Item.run_id == run_id, Item.state.in_(OPEN_ITEM_STATES))
            .values(state=ItemState.FAILED.value, last_error=reason, finished_at=utcnow())
        )


def fail_model(sessions: sessionmaker[Session], work: Work, reason: str) -> None:
    """An unknown model: fail all of its open items at once; the other models go on."""
    logger.error("run %s model %s: %s", work.run_id, work.label, reason)
    with session_scope(sessions) as session:
        session.execute(
            update(Item)
            .where(
                Item.run_id == work.run_id,
                Item.model_label == work.label,
                Item.state.in_(OPEN_ITEM_STATES),
            )
            .values(state=ItemState.FAILED.value, last_error=reason, finished_at=utcnow())
        )


def redact(text: str, resources: Resources) -> str:
    """Belt and braces: the API key never reaches the database or a log line."""
    key = resources.settings.together_api_key
    secret = key.get_secret_value() if key else ""
    return text.replace(secret, "[redacted]") if len(secret) >= 8 else text
