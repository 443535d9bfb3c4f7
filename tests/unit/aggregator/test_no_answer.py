"""Questions without an answer, scored as the official SQuAD 2.0 script (`evaluate-v2.0.py`)."""

from __future__ import annotations

import collections
import re
import string

import pytest

from evalfleet.aggregator.metrics import TurnScore, score_turn
from evalfleet.aggregator.no_answer import abstains, has_answer, score_answer
from evalfleet.workers.prompts import NO_ANSWER

RIGHT, WRONG = TurnScore(em=1.0, f1=1.0), TurnScore(em=0.0, f1=0.0)


def _official_normalize(s: str) -> str:
    """evaluate-v2.0.py's normalize_answer, as written there."""

    def remove_articles(text: str) -> str:
        return re.compile(r"\b(a|an|the)\b", re.UNICODE).sub(" ", text)

    exclude = set(string.punctuation)
    return " ".join(remove_articles("".join(ch for ch in s.lower() if ch not in exclude)).split())


def _official_scores(answers: list[str], prediction: str) -> tuple[float, float]:
    """evaluate-v2.0.py's get_raw_scores for one question: gold [""] when it has no answer."""
    gold = [a for a in answers if _official_normalize(a)] or [""]

    def f1(a_gold: str, a_pred: str) -> float:
        gold_toks, pred_toks = (
            _official_normalize(a_gold).split(),
            _official_normalize(a_pred).split(),
        )
        common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
        num_same = sum(common.values())
        if not gold_toks or not pred_toks:
            return float(gold_toks == pred_toks)
        if num_same == 0:
            return 0.0
        precision, recall = num_same / len(pred_toks), num_same / len(gold_toks)
        return 2 * precision * recall / (precision + recall)

    exact = max(float(_official_normalize(a) == _official_normalize(prediction)) for a in gold)
    return exact, max(f1(a, prediction) for a in gold)


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [("", RIGHT), ("unknown", RIGHT), ("Unknown.", RIGHT), ("  ", RIGHT), ("Paris", WRONG),
     ("it is unknown", WRONG), ("I don't know.", WRONG), ("the", RIGHT)],
)  # fmt: skip
def test_a_question_without_an_answer_is_right_only_when_the_answer_says_so(
    prediction: str, expected: TurnScore
) -> None:
    # Given a question the story does not answer (no references)
    # Then nothing (or the prompt's "unknown") is right, EM = F1 = 1; anything else is 0
    # ("the" normalizes to nothing, as in the official script)
    assert score_answer([], prediction) == expected


@pytest.mark.parametrize("prediction", ["", "Paris", "the Eiffel Tower", "a world fair", "x y"])
def test_with_the_phrase_mapped_to_nothing_it_is_the_official_squad2_score(
    prediction: str,
) -> None:
    # Given the official script's scores of a prediction on a question without an answer
    official = _official_scores([], prediction)
    # Then evalfleet gives the same
    assert (score_answer([], prediction).em, score_answer([], prediction).f1) == official
    # And the prompt's phrase is the official empty prediction
    assert score_answer([], NO_ANSWER) == score_answer([], "") == RIGHT


@pytest.mark.parametrize(
    ("references", "prediction"),
    [(["Paris"], "Paris"), (["Paris"], ""), (["Paris"], "unknown"), (["in 1889"], "1889"),
     (["Brazil and Peru"], "Peru")],
)  # fmt: skip
def test_an_answerable_question_scores_as_before_and_as_squad2(
    references: list[str], prediction: str
) -> None:
    # Given a question with one answer (where the CoQA and SQuAD scorers agree)
    score = score_answer(references, prediction)
    # Then it is the CoQA/SQuAD v1.1 score it always was, and the official SQuAD 2.0 one:
    # an empty answer, or "unknown", scores 0 on it
    assert score == score_turn(references, prediction)
    assert (score.em, score.f1) == pytest.approx(_official_scores(references, prediction))


def test_unknown_stays_right_where_the_gold_answer_is_unknown() -> None:
    # Given a SQuAD v1.1 question whose gold answer is the word "unknown" (the dev set has 3)
    # Then answering it is right, as before: the phrase is mapped only where there is no answer
    assert score_answer(["unknown", "unknown"], "unknown") == RIGHT


def test_has_answer_and_abstains() -> None:
    assert not has_answer([]) and not has_answer(())
    assert has_answer(["Paris"]) and has_answer([""])
    assert abstains("") and abstains("Unknown!") and abstains("the")
    assert not abstains("Paris") and not abstains("unknown man")
