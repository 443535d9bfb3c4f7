"""The official CoQA scorer in ``aggregator.metrics`` on a turn: several references (leave one
out), human performance, the 0-100 scale."""

from __future__ import annotations

import dataclasses
import random

import pytest

from evalfleet.aggregator.metrics import (
    TurnScore,
    as_percent,
    exact_match,
    f1_score,
    human_score_turn,
    score_turn,
)

TOLERANCE = 1e-9


def test_score_turn_with_four_references_averages_leave_one_out_maxima() -> None:
    # Given four references, only one of which equals the prediction
    references = ["blue", "dark blue", "navy", "light blue sky"]
    # When the turn is scored
    result = score_turn(references, "blue")
    # Then, leaving each reference out in turn:
    #   without "blue":           EM 0; F1 max(dark blue 2/3, navy 0, light blue sky 1/2) = 2/3
    #     (dark blue: P=1, R=1/2 -> 2/3; light blue sky: P=1, R=1/3 -> 1/2)
    #   without "dark blue":      "blue" is still there -> EM 1, F1 1
    #   without "navy":           EM 1, F1 1
    #   without "light blue sky": EM 1, F1 1
    # EM = 3/4; F1 = (2/3 + 3) / 4 = 11/12 (a plain max would have given 1 and 1)
    assert result.em == pytest.approx(3 / 4, abs=TOLERANCE)
    assert result.f1 == pytest.approx(11 / 12, abs=TOLERANCE)


def test_score_turn_with_a_single_reference_is_a_plain_comparison() -> None:
    # Given one reference
    reference = "dark blue"
    # When the turn is scored
    result = score_turn([reference], "blue")
    # Then it equals plain EM and F1 against that reference: EM 0, F1 2/3
    assert result == TurnScore(em=exact_match(reference, "blue"), f1=f1_score(reference, "blue"))
    assert result.em == 0.0
    assert result.f1 == pytest.approx(2 / 3, abs=TOLERANCE)


def official_turn_score(references: list[str], prediction: str) -> tuple[float, float]:
    """The official script's `_compute_turn_score`, pair by pair, as it is written there."""
    if len(references) == 1:
        return exact_match(references[0], prediction), f1_score(references[0], prediction)
    em_sum = f1_sum = 0.0
    for i in range(len(references)):
        others = references[:i] + references[i + 1 :]
        em_sum += max(exact_match(ref, prediction) for ref in others)
        f1_sum += max(f1_score(ref, prediction) for ref in others)
    return em_sum / len(references), f1_sum / len(references)


def test_score_turn_scoring_each_pair_once_gives_the_official_scores() -> None:
    # Given predictions and references drawn from a small vocabulary, empty ones included
    rng = random.Random(7)
    vocabulary = ["blue", "Blue!", "the", "a", "sky", "dark", "navy,", "", "an", "sea."]
    for _ in range(2000):
        references = [
            " ".join(rng.choices(vocabulary, k=rng.randint(0, 4))) for _ in range(rng.randint(1, 5))
        ]
        prediction = " ".join(rng.choices(vocabulary, k=rng.randint(0, 4)))
        # When the turn is scored, then it scores what the official formula does
        score = score_turn(references, prediction)
        em, f1 = official_turn_score(references, prediction)
        assert (score.em, score.f1) == pytest.approx((em, f1), abs=1e-12), (references, prediction)


def test_score_turn_rejects_an_empty_reference_list() -> None:
    # Given no references
    # When the turn is scored
    # Then it is a ValueError
    with pytest.raises(ValueError, match="at least one reference"):
        score_turn([], "blue")


def test_human_score_turn_takes_a_plain_max_over_the_other_references() -> None:
    # Given references where one annotator disagrees with the two others
    references = ["x", "x", "y"]
    # When human performance is computed
    result = human_score_turn(references)
    # Then, as in the official get_raw_scores_human: "x" vs max(x, y) = 1 twice,
    # "y" vs max(x, x) = 0; EM = F1 = 2/3 (a nested leave-one-out would give 1/3)
    assert result.em == pytest.approx(2 / 3, abs=TOLERANCE)
    assert result.f1 == pytest.approx(2 / 3, abs=TOLERANCE)


@pytest.mark.parametrize("references", [[], ["only one"]])
def test_human_score_turn_needs_at_least_two_references(references: list[str]) -> None:
    # Given fewer than two references
    # When human performance is computed
    # Then it is a ValueError
    with pytest.raises(ValueError, match="at least two reference"):
        human_score_turn(references)


def test_turn_score_is_immutable() -> None:
    # Given a turn score
    score = TurnScore(em=1.0, f1=1.0)
    # When a field is assigned
    # Then it is refused
    with pytest.raises(dataclasses.FrozenInstanceError):
        score.em = 0.0  # type: ignore[misc]


def test_as_percent_scales_by_one_hundred_without_rounding() -> None:
    # Given a 0..1 score
    value = 3431 / 3780
    # When it is converted to the official scale
    result = as_percent(value)
    # Then it is multiplied by 100 and not rounded
    assert result == value * 100
    assert as_percent(0.75) == 75.0
