"""One delivery of an item message: claim the item, then read everything its work needs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.accounting import spent_usd
from evalfleet.schema.db import session_scope
from evalfleet.schema.lifecycle import claim_item, close_item
from evalfleet.schema.models import (
    OPEN_ITEM_STATES,
    Answer,
    Item,
    ItemState,
    Question,
    Run,
    RunState,
    Story,
    as_utc,
    utcnow,
)
from evalfleet.schema.payloads import RunConfig
from evalfleet.schema.settings import Settings
from evalfleet.workers.retry_policy import RetryPolicy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Work:
    """What one delivery of an item needs, read from SQL in one go."""

    item_id: int
    run_id: int
    label: str
    model: str
    story_id: int
    story_key: str
    story_text: str
    config: RunConfig
    lease_s: float
    questions: tuple[tuple[int, str, tuple[str, ...]], ...]
    stored: dict[int, str | None]  # turn -> answer text (None: that turn failed for good)


@dataclass(frozen=True)
class Delivery:
    """What to do with one delivery of an item message."""

    run_id: int | None
    work: Work | None = None  # None: nothing to do (closed item, stopped run, poison)
    retry_in_s: float | None = None  # another live delivery holds the item: come back later


def start_delivery(
    sessions: sessionmaker[Session], item_id: int, settings: Settings, takeover: bool = False
) -> Delivery:
    """Claim the item atomically (a conditional UPDATE, so SQLite and PostgreSQL agree) and
    count the delivery before any work, then read everything the work needs. `takeover`:
    this is the retry of a delivery that held the item, so its lease is this task's own.
    Three statements, none through the ORM's objects: this runs once per item, on the thread
    that also stores the item's answers, in a process whose API threads want the GIL."""
    now = utcnow()
    with session_scope(sessions) as session:
        found = session.execute(
            select(
                Item.state,
                Item.run_id,
                Item.model_label,
                Item.story_id,
                Run.state.label("run_state"),
                Run.error.label("run_error"),
                Run.config,
                Story.key.label("story_key"),
                Story.text.label("story_text"),
            )
            .join(Run, Run.id == Item.run_id)
            .join(Story, Story.id == Item.story_id)
            .where(Item.id == item_id)
        ).one_or_none()
        if found is None:
            logger.warning("item %s: not in the database, message dropped", item_id)
            return Delivery(None)
        run_id = found.run_id
        if found.state not in OPEN_ITEM_STATES or found.state == ItemState.BATCHED.value:
            return Delivery(run_id)  # closed, or its questions are in a batch (D10)
        if found.run_state != RunState.RUNNING.value:
            close_item(
                session, item_id, ItemState.FAILED, f"run {run_id} stopped: {found.run_error}"
            )
            return Delivery(run_id)
        claimed = claim_item(session, item_id, settings.lease_s, takeover, now)
        if claimed is None:
            return held_elsewhere(session, item_id, run_id, now)
        if RetryPolicy.of(settings).deliveries_exhausted(claimed.attempts):
            # A task that kills its worker every time (task_reject_on_worker_lost redelivers
            # it) ends here instead of looping forever.
            last = claimed.last_error or "the worker was lost each time"
            reason = f"gave up after {settings.max_attempts} deliveries: {last}"
            logger.error("run %s item %s: %s", run_id, item_id, reason)
            close_item(session, item_id, ItemState.FAILED, reason)
            return Delivery(run_id)
        config = RunConfig.model_validate(found.config)
        if config.budget_usd is not None:
            spent = spent_usd(session, run_id, config.models, config.prices)
            if spent >= config.budget_usd:
                reason = f"budget of ${config.budget_usd:g} spent (${spent:.4f}): not started"
                close_item(session, item_id, ItemState.FAILED, reason)
                return Delivery(run_id)
        # Every question of the story with the answer this model already has, if any.
        turns = session.execute(
            select(
                Question.turn,
                Question.text,
                Question.references,
                Answer.turn.label("stored"),
                Answer.text.label("answer"),
            )
            .outerjoin(
                Answer,
                and_(
                    Answer.run_id == run_id,
                    Answer.model_label == found.model_label,
                    Answer.story_id == Question.story_id,
                    Answer.turn == Question.turn,
                ),
            )
            .where(Question.story_id == found.story_id)
            .order_by(Question.turn)
        ).all()
        return Delivery(
            run_id,
            Work(
                item_id=item_id,
                run_id=run_id,
                label=found.model_label,
                model=config.models[found.model_label],
                story_id=found.story_id,
                story_key=found.story_key,
                story_text=found.story_text,
                config=config,
                lease_s=settings.lease_s,
                questions=tuple((t.turn, t.text, tuple(t.references)) for t in turns),
                stored={t.turn: t.answer for t in turns if t.stored is not None},
            ),
        )


def held_elsewhere(session: Session, item_id: int, run_id: int, now: datetime) -> Delivery:
    """The claim found the item closed meanwhile, or held by a live delivery: then come back
    once its lease is over."""
    state, lease_until = session.execute(
        select(Item.state, Item.lease_until).where(Item.id == item_id)
    ).one()
    if state not in OPEN_ITEM_STATES:
        return Delivery(run_id)
    lease_end = as_utc(lease_until) if lease_until else now
    return Delivery(run_id, retry_in_s=max(1.0, (lease_end - now).total_seconds() + 1))
