"""Questions the story does not answer, scored as the official SQuAD 2.0 script does.

Such a question is stored without references (SQuAD 2.0 `is_impossible`, CoQA "unknown";
producer/dataset.py). `evaluate-v2.0.py` gives it the single gold answer "": EM = F1 = 1 exactly
when the prediction normalizes to nothing, else 0. The prompt asks the model to answer
NO_ANSWER ("unknown") instead of nothing, so that phrase counts as the empty prediction.

An answerable question is scored by `score_turn` as before, on the answer as given: an empty
prediction scores 0 there, as in `evaluate-v2.0.py`, and so does NO_ANSWER, unless a gold answer
itself holds the word (SQuAD v1.1 has answers "unknown"), where mapping it to "" first would
change SQuAD v1.1 and CoQA scores.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalfleet.aggregator.metrics import TurnScore, normalize_answer, score_turn
from evalfleet.workers.prompts import NO_ANSWER

__all__ = ["NO_GOLD", "abstains", "has_answer", "score_answer"]

NO_GOLD = "(no answer)"  # what reports show as the gold answer of such a question
_ABSTENTIONS = frozenset({"", normalize_answer(NO_ANSWER)})


def has_answer(references: Sequence[str]) -> bool:
    """Whether the story answers the question: it has at least one reference."""
    return bool(references)


def abstains(prediction: str) -> bool:
    """Whether a prediction says the story does not answer: nothing, or the prompt's phrase."""
    return normalize_answer(prediction) in _ABSTENTIONS


def score_answer(references: Sequence[str], prediction: str) -> TurnScore:
    """EM and F1 (0..1) of a prediction, for a question with or without an answer."""
    if has_answer(references):
        return score_turn(references, prediction)
    right = float(abstains(prediction))
    return TurnScore(em=right, f1=right)
