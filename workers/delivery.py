"""One delivery of an item message: claim the item, then read everything its work needs, in
one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.accounting import spent_usd
from evalfleet.schema.db import session_scope
from evalfleet.schema.lifecycle import claim_item, close_item
from evalfleet.schema.models import (
    OPEN_ITEM_STATES,
    Answer,
    Item,
    ItemState,
    Judgement,
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
    questions: tuple[tuple[int, str, tuple[str, ...]], ...]
    stored: dict[int, str | None]  # turn -> answer text (None: that turn failed for good)
    sample: int = 0  # which of the question's samples this item asks (RunConfig.sample_seed)
    judged: frozenset[int] = frozenset()  # turns the run's judge graded (a verdict or error)


@dataclass(frozen=True)
class Delivery:
    """What to do with one delivery of an item message."""

    run_id: int | None
    work: Work | None = None  # None: nothing to do (closed item, stopped run, poison)
    retry_in_s: float | None = None  # another live delivery holds the item: come back later


def _work_statement() -> Any:
    """The story, the run's config and every question with the answer this model already
    has for this sample, if any, and whether the run's judge (none: no row) graded it; built
    once, on the Core tables (its parameters bound per delivery). The judge's name is read
    from the run's config in the join: a judgement per answer and judge (JUDGEMENT_KEY), so a
    question stays one row."""
    stories, runs, questions, answers, judgements = (
        cast(Table, model.__table__).c for model in (Story, Run, Question, Answer, Judgement)
    )

    def this_turn(rows: Any) -> Any:
        """An answer's or a judgement's row of this item (run, model, sample) and question."""
        return and_(
            rows.run_id == bindparam("run_id"),
            rows.model_label == bindparam("label"),
            rows.story_id == questions.story_id,
            rows.turn == questions.turn,
            rows.sample == bindparam("sample"),
        )

    return (
        select(
            stories.key,
            stories.text.label("story_text"),
            runs.config,
            questions.turn,
            questions.text,
            questions.references,
            answers.turn.label("stored"),
            answers.text.label("answer"),
            judgements.turn.label("judged"),
        )
        .select_from(cast(Table, Story.__table__))
        .join(cast(Table, Run.__table__), runs.id == stories.run_id)
        .outerjoin(cast(Table, Question.__table__), questions.story_id == stories.id)
        .outerjoin(cast(Table, Answer.__table__), this_turn(answers))
        .outerjoin(
            cast(Table, Judgement.__table__),
            and_(
                this_turn(judgements),
                judgements.judge == runs.config[("judge", "model")].as_string(),
            ),
        )
        .where(stories.id == bindparam("story_id"))
        .order_by(questions.turn)
    )


_WORK = _work_statement()


def start_delivery(
    sessions: sessionmaker[Session], item_id: int, settings: Settings, takeover: bool = False
) -> Delivery:
    """Claim the item atomically (a conditional UPDATE, so SQLite and PostgreSQL agree) and
    count the delivery before any work, then read everything the work needs: one transaction,
    two statements when the claim succeeds (a budget adds one), none through the ORM's
    objects. This runs once per item, on the thread that also stores the item's answers, in
    a process whose API threads want the GIL: a 5-question item must not pay for it like a
    15-turn one. `takeover`: this is the retry of a delivery that held the item, so its lease
    is this task's own."""
    now = utcnow()
    with session_scope(sessions) as session:
        claimed = claim_item(session, item_id, settings.lease_s, takeover, now)
        if claimed is None:
            return not_claimed(session, item_id, now)
        run_id = claimed.run_id
        if RetryPolicy.of(settings).deliveries_exhausted(claimed.attempts):
            # A task that kills its worker every time (task_reject_on_worker_lost redelivers
            # it) ends here instead of looping forever.
            last = claimed.last_error or "the worker was lost each time"
            reason = f"gave up after {settings.max_attempts} deliveries: {last}"
            logger.error("run %s item %s: %s", run_id, item_id, reason)
            close_item(session, item_id, ItemState.FAILED, reason)
            return Delivery(run_id)
        # One statement (the story's columns repeat on each question's row).
        rows = session.execute(
            _WORK,
            {
                "run_id": run_id,
                "label": claimed.model_label,
                "story_id": claimed.story_id,
                "sample": claimed.sample,
            },
        ).all()
        story = rows[0]
        config = RunConfig.model_validate(story.config)
        if config.budget_usd is not None:
            spent = spent_usd(session, run_id, config)
            if spent >= config.budget_usd:
                reason = f"budget of ${config.budget_usd:g} spent (${spent:.4f}): not started"
                close_item(session, item_id, ItemState.FAILED, reason)
                return Delivery(run_id)
        turns = [row for row in rows if row.turn is not None]
        return Delivery(
            run_id,
            Work(
                item_id=item_id,
                run_id=run_id,
                label=claimed.model_label,
                model=config.models[claimed.model_label],
                story_id=claimed.story_id,
                story_key=story.key,
                story_text=story.story_text,
                config=config,
                questions=tuple((t.turn, t.text, tuple(t.references)) for t in turns),
                stored={t.turn: t.answer for t in turns if t.stored is not None},
                sample=claimed.sample,
                judged=frozenset(t.turn for t in turns if t.judged is not None),
            ),
        )


def not_claimed(session: Session, item_id: int, now: datetime) -> Delivery:
    """Why the claim changed nothing: the item is unknown or closed (nothing to do), its run
    stopped (the item fails with the run's reason), or a live delivery holds it (come back
    once its lease is over)."""
    found = session.execute(
        select(Item.state, Item.run_id, Item.lease_until, Run.state, Run.error)
        .join(Run, Run.id == Item.run_id)
        .where(Item.id == item_id)
    ).one_or_none()
    if found is None:
        logger.warning("item %s: not in the database, message dropped", item_id)
        return Delivery(None)
    state, run_id, lease_until, run_state, run_error = found
    if state not in OPEN_ITEM_STATES or state == ItemState.BATCHED.value:
        return Delivery(run_id)  # closed, or its questions are in a batch (D10)
    if run_state != RunState.RUNNING.value:
        close_item(session, item_id, ItemState.FAILED, f"run {run_id} stopped: {run_error}")
        return Delivery(run_id)
    lease_end = as_utc(lease_until) if lease_until else now
    return Delivery(run_id, retry_in_s=max(1.0, (lease_end - now).total_seconds() + 1))
