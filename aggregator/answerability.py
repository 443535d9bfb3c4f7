"""Scores split by whether the story answers the question: HasAns and NoAns, as the official
SQuAD 2.0 script reports them. Only a run with a question without an answer has a split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from evalfleet.aggregator.aggregate import DomainScore, compute_scores
from evalfleet.aggregator.no_answer import has_answer
from evalfleet.aggregator.scored import ScoredTurn

__all__ = ["GROUPS", "HAS_ANSWER", "NO_ANSWER", "answerability_scores"]

HAS_ANSWER, NO_ANSWER = "HasAns", "NoAns"  # the names evaluate-v2.0.py prints
GROUPS = (HAS_ANSWER, NO_ANSWER)


def answerability_scores(turns: Sequence[ScoredTurn]) -> dict[str, Mapping[str, DomainScore]]:
    """Per model label, its HasAns and NoAns scores; empty when every question has an answer.

    The groups stand in for the source domain of the turns given to `compute_scores`, so they
    are scored as every other score: on the questions every answering model answered, with
    failures counted and never scored (docs/architecture.md, D6).
    """
    if all(has_answer(t.references) for t in turns):
        return {}
    scores = {(s.label, s.domain): s for s in compute_scores(turns, _answerability)}
    labels = dict.fromkeys(t.label for t in turns)
    return {
        label: {group: scores.get((label, group)) or _none(label, group) for group in GROUPS}
        for label in labels
    }


def _answerability(turn: ScoredTurn) -> str:
    return HAS_ANSWER if has_answer(turn.references) else NO_ANSWER


def _none(label: str, group: str) -> DomainScore:
    """A group without questions (every question has no answer, say)."""
    return DomainScore(label, group, questions=0, answered=0, failed=0, scored=0, em=None, f1=None)
