"""Writing a batch's outcomes: the same answer rows (upserts on the answer key, D2) and
cache rows as the synchronous path, and closing items whose every question is answered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from evalfleet.schema import lifecycle
from evalfleet.schema.db import upsert
from evalfleet.schema.models import ANSWER_KEY, Answer, CachedResponse, Item, ItemState, Question
from evalfleet.workers import cache
from evalfleet.workers.api import Completion
from evalfleet.workers.batch.lines import BatchLine
from evalfleet.workers.storing import answer_values


class AnswerRows:
    """Answer and cache rows of one model, gathered, then upserted in one go."""

    def __init__(self, run_id: int, label: str, model: str) -> None:
        self.run_id, self.label, self.model = run_id, label, model
        self.answers: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []

    def add(
        self,
        line: BatchLine,
        completion: Completion | None,
        error: str | None,
        attempt: int,
        cached: bool = False,
    ) -> None:
        self.answers.append(
            answer_values(
                self.run_id,
                self.label,
                line.story_id,
                line.turn,
                completion,
                attempt,
                error,
                cached,
            )  # fmt: skip
        )
        if completion is not None and line.cache_key is not None and not cached:
            self.responses.append(cache.cache_row(line.cache_key, self.model, completion))

    def write(self, session: Session) -> list[str]:
        """Upsert the rows; the model label of each answer row created (for the metrics,
        counted once the caller's transaction commits)."""
        # Sorted by key, as the group commit does, so concurrent writers lock in one order.
        self.answers.sort(key=lambda row: tuple(row[column] for column in ANSWER_KEY))
        self.responses.sort(key=lambda row: row["key"])
        new = upsert(session, Answer.__table__, self.answers, ANSWER_KEY, returning=["model_label"])
        upsert(session, CachedResponse.__table__, self.responses, ("key",))
        return [str(row.model_label) for row in new]


def close_answered(session: Session, run_id: int, item_ids: Sequence[int]) -> int:
    """open → done for the items among `item_ids` whose every question has an answer row
    (an error row included: a 400 is that question's final answer). The items are locked
    first, in id order: two pollers storing parts of one item wait for each other, so the
    second sees the first's answers and closes it (PostgreSQL; SQLite has one writer)."""
    ids = sorted(set(item_ids))
    if not ids:
        return 0
    locked = list(
        session.execute(
            select(Item.id, Item.story_id, Item.model_label)
            .where(Item.id.in_(ids))
            .order_by(Item.id)
            .with_for_update()
        )
    )
    stories = {story_id for _, story_id, _ in locked}
    asked: dict[int, int] = dict(
        session.execute(
            select(Question.story_id, func.count())
            .where(Question.story_id.in_(stories))
            .group_by(Question.story_id)
        ).all()
    )
    answered = {
        (label, story_id): count
        for label, story_id, count in session.execute(
            select(Answer.model_label, Answer.story_id, func.count())
            .where(Answer.run_id == run_id, Answer.story_id.in_(stories))
            .group_by(Answer.model_label, Answer.story_id)
        )
    }
    complete = [
        item_id
        for item_id, story_id, label in locked
        if answered.get((label, story_id), 0) >= asked.get(story_id, 0)
    ]
    if complete:
        lifecycle.close_items(session, Item.id.in_(complete), ItemState.DONE, None)
    return len(complete)
