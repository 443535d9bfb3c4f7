"""EM and F1 per model and source domain, on the questions every model answered."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from evalfleet.aggregator.metrics import as_percent
from evalfleet.aggregator.samples import per_question_means
from evalfleet.aggregator.scored import ScoredTurn, load_scored_turns
from evalfleet.schema.db import session_scope, upsert
from evalfleet.schema.lifecycle import claim_results
from evalfleet.schema.models import Result

logger = logging.getLogger(__name__)
OVERALL = "overall"


@dataclass(frozen=True)
class DomainScore:
    label: str
    domain: str
    questions: int
    answered: int
    failed: int
    scored: int  # answered by every model: the only questions the scores are computed on
    em: float | None  # 0-100
    f1: float | None
    # The judge's accuracy, 0-100, on the questions in common that the judge graded for every
    # model (`judged_in_common`); None when the run has no judge or nothing was graded.
    judge: float | None = None


def source_of(turn: ScoredTurn) -> str:
    return turn.source


def compute_scores(
    turns: Sequence[ScoredTurn], group_of: Callable[[ScoredTurn], str] = source_of
) -> list[DomainScore]:
    """Failures are counted, never scored as wrong (docs/architecture.md, D6). Samples of a
    question count as one question, scored by their mean (aggregator/samples.py). The
    domains are `group_of` each turn: its source, unless told otherwise."""
    turns = per_question_means(turns)
    labels = list(dict.fromkeys(t.label for t in turns))
    # A model that answered nothing (unknown model, say) is reported failed, and does not
    # empty the comparison of the others.
    answering = {t.label for t in turns if t.answer is not None}
    answered_by: dict[tuple[int, int], int] = defaultdict(int)
    for t in turns:
        if t.answer is not None:
            answered_by[(t.story_id, t.turn)] += 1
    common = {key for key, count in answered_by.items() if count == len(answering)}
    judged = judged_in_common(turns, common)
    groups: dict[tuple[str, str], list[ScoredTurn]] = defaultdict(list)
    for t in turns:
        groups[(t.label, group_of(t))].append(t)
        groups[(t.label, OVERALL)].append(t)
    domains = sorted({domain for label, domain in groups if domain != OVERALL})
    scores = []
    for label in labels:
        for domain in [*domains, OVERALL]:
            group = groups.get((label, domain), [])
            # Only answers are scored: a model that answered nothing has no score (None,
            # reported as such), never 0 over the others' questions.
            in_common = [
                t for t in group if t.answer is not None and (t.story_id, t.turn) in common
            ]
            answered = sum(t.answer is not None for t in group)
            failed = sum(t.answer is None and t.error is not None for t in group)
            scores.append(
                DomainScore(
                    label=label,
                    domain=domain,
                    questions=len(group),
                    answered=answered,
                    failed=failed,
                    scored=len(in_common),
                    em=_mean_percent([_score(t.em) for t in in_common]),
                    f1=_mean_percent([_score(t.f1) for t in in_common]),
                    judge=_mean_percent(
                        [
                            t.judge
                            for t in in_common
                            if t.judge is not None and (t.story_id, t.turn) in judged
                        ]
                    ),  # fmt: skip
                )
            )
    return scores


def judged_in_common(
    turns: Sequence[ScoredTurn], common: set[tuple[int, int]]
) -> set[tuple[int, int]]:
    """The questions (story id, turn) the judge accuracy is computed on: in common (answered
    by every answering model) and graded for every model the judge graded anything of.

    A judged comparison is paired like EM/F1 (docs/architecture.md, "The judge"): a
    question graded for one model only would compare one model's answer with nothing, and a
    grade the judge could not give is never scored as wrong (D6). As with answers, a model
    the judge graded nothing of (a judge run that failed for it) does not empty the others'.
    """
    graded_models = {t.label for t in turns if t.judge is not None}
    graded_by: dict[tuple[int, int], int] = defaultdict(int)
    for t in turns:
        if t.judge is not None and (t.story_id, t.turn) in common:
            graded_by[(t.story_id, t.turn)] += 1
    return {key for key, count in graded_by.items() if count == len(graded_models)}


def _score(value: float | None) -> float:
    """An answer's score; every answer has one (aggregator/scored.py scores each text)."""
    if value is None:
        raise ValueError("an answered question without a score")
    return value


def _mean_percent(values: Sequence[float]) -> float | None:
    return as_percent(sum(values) / len(values)) if values else None


def aggregate_run(sessions: sessionmaker[Session], run_id: int) -> bool:
    """Write the results once: only a run in `aggregating` state is aggregated."""
    with session_scope(sessions) as session:
        if not claim_results(session, run_id):  # first: a second delivery waits on its lock
            logger.info("run %s: not awaiting aggregation, skipped", run_id)
            return False
        # Here, not at the top: the analysis builds on this module's scores.
        from evalfleet.aggregator.analysis import (
            compute_analysis,
            load_story_texts,
            store_analysis,
        )

        turns = load_scored_turns(session, run_id)
        scores = compute_scores(turns)
        write_results(session, run_id, scores)
        # Once, for every later report and status (docs/architecture.md, "Reports at scale").
        store_analysis(session, run_id, compute_analysis(turns, load_story_texts(session, run_id)))
    logger.info("run %s: aggregated %s results", run_id, len(scores))
    return True


def write_results(session: Session, run_id: int, scores: Sequence[DomainScore]) -> None:
    rows = [
        {
            "run_id": run_id,
            "model_label": s.label,
            "domain": s.domain,
            "questions": s.questions,
            "answered": s.answered,
            "failed": s.failed,
            "scored": s.scored,
            "em": s.em,
            "f1": s.f1,
            "judge": s.judge,
        }
        for s in scores
    ]
    upsert(
        session,
        Result.__table__,
        rows,
        ("run_id", "model_label", "domain"),
        ("questions", "answered", "failed", "scored", "em", "f1", "judge"),
    )
