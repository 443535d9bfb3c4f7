"""A run's counts as SQL aggregates: items per state, questions answered, failed and scored per
model and domain, answers cut at max_tokens, and the first failed questions.

What `status` shows at any scale: a few GROUP BY statements, whatever the number of answers,
and no answer is loaded or scored (docs/architecture.md, "Reports at scale"). The counts are
the ones compute_scores, truncation_by_label and failed_questions take from loaded turns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session, aliased

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


def _per_source(session: Session, statement: Select[str, str, int]) -> dict[tuple[str, str], int]:
    """(label, source) -> count, from a statement selecting label, source and a count."""
    return {(label, source): int(n) for label, source, n in session.execute(statement)}


def counted_scores(session: Session, run_id: int, labels: Sequence[str]) -> list[DomainScore]:
    """Questions, answered, failed and scored per label and domain (then overall), without
    EM or F1: the DomainScores of compute_scores, counted in SQL.

    Each figure is its own GROUP BY over one table joined to the stories by key: no statement
    joins every question to every answer, which a planner without fresh statistics (a run just
    written) turned into a nested loop of seconds."""
    questions = dict(
        session.execute(
            select(Story.source, func.count())
            .join(Question, Question.story_id == Story.id)
            .where(Story.run_id == run_id)
            .group_by(Story.source)
        ).all()
    )
    if session.scalar(select(func.max(Item.sample)).where(Item.run_id == run_id)):
        answered, failed, scored = _per_question_counts(session, run_id, labels)
    else:
        answered, failed, scored = _per_answer_counts(session, run_id, labels)
    scores: list[DomainScore] = []
    for label in labels:
        # A model that answered nothing has nothing scored (aggregate.compute_scores).
        answers_any = any(answered.get((label, source), 0) for source in questions)
        rows = [
            DomainScore(
                label, source, int(n), answered.get((label, source), 0),
                failed.get((label, source), 0), scored.get(source, 0) if answers_any else 0,
                None, None,
            )
            for source, n in sorted(questions.items())
        ]  # fmt: skip
        overall = DomainScore(
            label, OVERALL, sum(s.questions for s in rows), sum(s.answered for s in rows),
            sum(s.failed for s in rows), sum(s.scored for s in rows), None, None,
        )  # fmt: skip
        scores += [*rows, overall]
    return scores


Counts = tuple[dict[tuple[str, str], int], dict[tuple[str, str], int], dict[str, int]]


# A stored answer's text, or its error without text: answered, or failed for good.
_ANSWERED = Answer.text.is_not(None)
_FAILED = and_(Answer.text.is_(None), Answer.error.is_not(None))


def _lost(run_id: int, labels: Sequence[str], *columns: Any) -> Select[Any]:
    """`columns` of the questions of items that failed with a reason and have no answer of the
    item's sample: failed too (as aggregator/scored.py reads it: a pending item's last reason
    fails no turn yet)."""
    stored = select(Answer.id).where(
        Answer.run_id == run_id, Answer.model_label == Item.model_label,
        Answer.story_id == Story.id, Answer.turn == Question.turn, Answer.sample == Item.sample,
    )  # fmt: skip
    return (
        select(*columns)
        .select_from(Item)
        .join(Story, Story.id == Item.story_id)
        .join(Question, Question.story_id == Story.id)
        .where(
            Item.run_id == run_id, Item.model_label.in_(labels),
            Item.state == ItemState.FAILED.value, Item.last_error.is_not(None), ~stored.exists(),
        )
    )  # fmt: skip


def _per_answer_counts(session: Session, run_id: int, labels: Sequence[str]) -> Counts:
    """Answered and failed per (label, source), scored per source: one answer per question."""
    by_answer = (
        select(Answer.model_label, Story.source, func.count())
        .join(Story, Story.id == Answer.story_id)
        .where(Answer.run_id == run_id, Answer.model_label.in_(labels))
        .group_by(Answer.model_label, Story.source)
    )
    answered = _per_source(session, by_answer.where(_ANSWERED))
    failed = _per_source(session, by_answer.where(_FAILED))
    lost = _lost(run_id, labels, Item.model_label, Story.source, func.count())
    for key, n in _per_source(session, lost.group_by(Item.model_label, Story.source)).items():
        failed[key] = failed.get(key, 0) + n
    return answered, failed, _scored_per_source(session, run_id, labels)


def _per_question_counts(session: Session, run_id: int, labels: Sequence[str]) -> Counts:
    """The same counts when a question has several samples (--samples K): answered when any
    sample answered, failed when none did and one failed for good (aggregator/samples.py).
    One row per (label, question) is read: a sampled run's status costs a pass over them."""
    source_of = dict(
        session.execute(select(Story.id, Story.source).where(Story.run_id == run_id)).all()
    )
    question = select(Answer.model_label, Answer.story_id, Answer.turn).distinct()
    question = question.where(Answer.run_id == run_id, Answer.model_label.in_(labels))
    answered = _rows(session, question.where(_ANSWERED))
    failed = _rows(session, question.where(_FAILED))
    lost = _rows(
        session, _lost(run_id, labels, Item.model_label, Story.id, Question.turn).distinct()
    )
    answering = {label for label, _, _ in answered}
    by_question: dict[tuple[int, int], int] = {}
    for _, story_id, turn in answered:
        by_question[(story_id, turn)] = by_question.get((story_id, turn), 0) + 1
    scored: dict[str, int] = {}
    for (story_id, _), n in by_question.items():
        if n == len(answering):
            scored[source_of[story_id]] = scored.get(source_of[story_id], 0) + 1
    return (
        _count_sources(answered, source_of),
        _count_sources((failed | lost) - answered, source_of),
        scored,
    )


def _rows(session: Session, statement: Select[str, int, int]) -> set[tuple[str, int, int]]:
    return {(label, story_id, turn) for label, story_id, turn in session.execute(statement)}


def _count_sources(
    questions: set[tuple[str, int, int]], source_of: Mapping[int, str]
) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for label, story_id, _ in questions:
        key = (label, source_of[story_id])
        counts[key] = counts.get(key, 0) + 1
    return counts


def _scored_per_source(session: Session, run_id: int, labels: Sequence[str]) -> dict[str, int]:
    """Questions every answering model answered, per source: the only ones scored
    (docs/architecture.md, D6); the same for every label, as each has every question."""
    mine = (Answer.run_id == run_id, Answer.text.is_not(None), Answer.model_label.in_(labels))
    answering = session.scalar(select(func.count(distinct(Answer.model_label))).where(*mine))
    common = (
        select(Answer.story_id)
        .where(*mine)
        .group_by(Answer.story_id, Answer.turn)
        .having(func.count() == answering)
        .subquery()
    )
    rows = session.execute(
        select(Story.source, func.count())
        .select_from(common)
        .join(Story, Story.id == common.c.story_id)
        .group_by(Story.source)
    )
    return {source: int(n) for source, n in rows}


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
    session: Session, run_id: int, failed: Mapping[str, int]
) -> tuple[tuple[FailedQuestion, ...], int]:
    """The first FAILURES_SHOWN failed questions (label, then story and turn order) with their
    errors, and how many failed in all; `failed` holds each label's count, in label order."""
    shown: list[FailedQuestion] = []
    samples = 1 + (session.scalar(select(func.max(Item.sample)).where(Item.run_id == run_id)) or 0)
    for label, count in failed.items():
        room = FAILURES_SHOWN - len(shown)
        if room <= 0:
            break
        if count:
            shown += [FailedQuestion(label, key, turn, error) for key, turn, error in
                      _first_failed(session, run_id, label, room, samples)]  # fmt: skip
    return tuple(shown), sum(failed.values())


def _first_failed(
    session: Session, run_id: int, label: str, limit: int, samples: int = 1
) -> list[tuple[str, int, str]]:
    """Two small lookups, merged: failed turns with their stored error, and the unanswered turns
    of items that failed (a join of all questions to all answers is what a planner without
    fresh statistics turns into a nested loop over both). With several `samples` a question
    is listed once, and only when none of its samples answered (aggregator/samples.py)."""
    answered = (
        select(Story.position, Story.key, Answer.turn, Answer.error)
        .join(Story, Story.id == Answer.story_id)
        .where(
            Answer.run_id == run_id, Answer.model_label == label,
            Answer.text.is_(None), Answer.error.is_not(None),
        )
        .order_by(Story.position, Answer.turn)
        .limit(limit * samples)
    )  # fmt: skip
    stored = (
        select(Answer.id)
        .where(Answer.run_id == run_id, Answer.model_label == label)
        .where(Answer.story_id == Story.id, Answer.turn == Question.turn)
    )
    if samples > 1:
        other = aliased(Answer)
        answered = answered.where(
            ~select(other.id).where(
                other.run_id == run_id, other.model_label == label, other.text.is_not(None),
                other.story_id == Answer.story_id, other.turn == Answer.turn,
            ).exists()
        )  # fmt: skip
        # This item's sample stored it, or another sample answered the question.
        stored = stored.where(or_(Answer.sample == Item.sample, Answer.text.is_not(None)))
    unanswered = (
        select(Story.position, Story.key, Question.turn, Item.last_error)
        .join(Story, Story.id == Item.story_id)
        .join(Question, Question.story_id == Story.id)
        .where(
            Item.run_id == run_id, Item.model_label == label,
            Item.state == ItemState.FAILED.value, Item.last_error.is_not(None),
            ~stored.exists(),
        )
        .order_by(Story.position, Question.turn)
        .limit(limit * samples)
    )  # fmt: skip
    rows = sorted([*session.execute(answered), *session.execute(unanswered)])
    first = {(position, key, turn): error for position, key, turn, error in reversed(rows)}
    return [(key, turn, error) for (_, key, turn), error in sorted(first.items())[:limit]]
