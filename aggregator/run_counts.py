"""A run's counts as SQL aggregates: items per state, questions answered, failed and scored per
model and domain, answers cut at max_tokens, and the first failed questions.

What `status` shows at any scale: a few GROUP BY statements, whatever the number of answers,
and no answer is loaded or scored (docs/architecture.md, "Reports at scale"). The counts are
the ones compute_scores, truncation_by_label and failed_questions take from loaded turns.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session

from evalfleet.aggregator.aggregate import OVERALL, DomainScore
from evalfleet.aggregator.summary_types import FailedQuestion
from evalfleet.aggregator.truncation import LENGTH, Truncation
from evalfleet.schema.models import Answer, Item, ItemState, Question, Story

__all__ = ["FAILURES_SHOWN", "counted_scores", "failed_questions", "item_states", "truncations"]

FAILURES_SHOWN = 20


def item_states(session: Session, run_id: int) -> dict[str, int]:
    """Items per state, sorted by state."""
    rows = session.execute(
        select(Item.state, func.count()).where(Item.run_id == run_id).group_by(Item.state)
    )
    return dict(sorted((state, int(n)) for state, n in rows))


def _turns_of(run_id: int, label: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """Join conditions of a label's answer and failed item to each question of the run."""
    answer = and_(
        Answer.run_id == run_id, Answer.model_label == label,
        Answer.story_id == Story.id, Answer.turn == Question.turn,
    )  # fmt: skip
    failed_item = and_(
        Item.run_id == run_id, Item.model_label == label, Item.story_id == Story.id,
        Item.state == ItemState.FAILED.value,
    )  # fmt: skip
    return answer, failed_item


# Failed: a stored error without text, or no answer in an item that failed with a reason (as
# aggregator/scored.py reads it: a pending item's last reason does not fail its turns yet).
_FAILED = or_(
    and_(Answer.id.is_not(None), Answer.text.is_(None), Answer.error.is_not(None)),
    and_(Answer.id.is_(None), Item.last_error.is_not(None)),
)


def counted_scores(session: Session, run_id: int, labels: Sequence[str]) -> list[DomainScore]:
    """Questions, answered, failed and scored per label and domain (then overall), without
    EM or F1: the DomainScores of compute_scores, counted in SQL."""
    answering = session.scalar(
        select(func.count(distinct(Answer.model_label))).where(
            Answer.run_id == run_id, Answer.text.is_not(None), Answer.model_label.in_(labels)
        )
    )
    # Questions every answering model answered: the only ones scored (docs/architecture.md, D6).
    common = (
        select(Answer.story_id, Answer.turn)
        .where(Answer.run_id == run_id, Answer.text.is_not(None), Answer.model_label.in_(labels))
        .group_by(Answer.story_id, Answer.turn)
        .having(func.count() == answering)
        .subquery()
    )
    scores: list[DomainScore] = []
    for label in labels:
        answer, failed_item = _turns_of(run_id, label)
        rows = session.execute(
            select(
                Story.source, func.count(), func.count(Answer.text),
                func.sum(case((_FAILED, 1), else_=0)), func.count(common.c.turn),
            )
            .join(Question, Question.story_id == Story.id)
            .outerjoin(Answer, answer)
            .outerjoin(Item, failed_item)
            .outerjoin(common, and_(common.c.story_id == Story.id, common.c.turn == Question.turn))
            .where(Story.run_id == run_id)
            .group_by(Story.source)
        ).all()  # fmt: skip
        counts = {source: tuple(int(n or 0) for n in rest) for source, *rest in rows}
        total = [sum(c[i] for c in counts.values()) for i in range(4)]
        for domain, (questions, answered, failed, scored) in [
            *sorted(counts.items()),
            (OVERALL, tuple(total)),
        ]:
            scores.append(
                DomainScore(label, domain, questions, answered, failed, scored, None, None)
            )
    return scores


def truncations(
    session: Session, run_id: int, labels: Sequence[str], max_tokens: int | None
) -> dict[str, Truncation]:
    """Each label's answered questions and those cut at max_tokens."""
    cut = and_(Answer.text.is_not(None), Answer.finish_reason == LENGTH)
    rows = session.execute(
        select(Answer.model_label, func.count(Answer.text), func.sum(case((cut, 1), else_=0)))
        .where(Answer.run_id == run_id, Answer.model_label.in_(labels))
        .group_by(Answer.model_label)
    )
    counts = {label: (int(n or 0), int(c or 0)) for label, n, c in rows}
    return {
        label: Truncation(*counts.get(label, (0, 0)), max_tokens=max_tokens) for label in labels
    }


def failed_questions(
    session: Session, run_id: int, labels: Sequence[str], total: int
) -> tuple[tuple[FailedQuestion, ...], int]:
    """The first FAILURES_SHOWN failed questions (label, then story and turn order) with their
    errors, and `total`: how many failed in all (the counts' own sum)."""
    shown: list[FailedQuestion] = []
    for label in labels:
        if len(shown) == FAILURES_SHOWN:
            break
        answer, failed_item = _turns_of(run_id, label)
        rows = session.execute(
            select(Story.key, Question.turn, func.coalesce(Answer.error, Item.last_error))
            .join(Question, Question.story_id == Story.id)
            .outerjoin(Answer, answer)
            .outerjoin(Item, failed_item)
            .where(Story.run_id == run_id, _FAILED)
            .order_by(Story.position, Question.turn)
            .limit(FAILURES_SHOWN - len(shown))
        )
        shown += [FailedQuestion(label, key, turn, error) for key, turn, error in rows]
    return tuple(shown), total
