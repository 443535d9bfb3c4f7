"""Tests for the official CoQA/SQuAD scorer in ``aggregator.metrics``."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import string
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from evalfleet.aggregator.metrics import (
    TurnScore,
    as_percent,
    exact_match,
    f1_score,
    human_score_turn,
    normalize_answer,
    score_turn,
)

TOLERANCE = 1e-9
COQA_SAMPLE = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "data"
    / "coqa"
    / "coqa-dev-v1.0-sample.json"
)


# --- normalization -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The cat and a dog ate an apple", "cat and dog ate apple"),
        ("theory another anthem", "theory another anthem"),  # articles only as whole words
        ("WHITE", "white"),
        ("  in\t a\n barn  ", "in barn"),
        ("Yes!!!", "yes"),
        ("5, 6 & 7.", "5 6 7"),
    ],
)
def test_normalize_answer_drops_case_punctuation_articles_and_extra_space(
    text: str, expected: str
) -> None:
    # Given a raw answer
    # When it is normalized
    result = normalize_answer(text)
    # Then case, punctuation, articles and extra white space are gone
    assert result == expected


@pytest.mark.parametrize(
    "text",
    ["Dr. Smith's 'cat', (aged 3)!", "a-b_c/d\\e", "«Voilà» — l’été…", "", "!!!", "the\tAn a"],
)
def test_normalize_answer_drops_the_punctuation_the_official_script_drops(text: str) -> None:
    # Given the official evaluate-v1.0.py normalization, written out as it is there
    exclude = set(string.punctuation)
    lowered = "".join(ch for ch in text.lower() if ch not in exclude)
    official = " ".join(re.sub(r"\b(a|an|the)\b", " ", lowered, flags=re.UNICODE).split())
    # Then ours gives the same string (non-ASCII punctuation is kept by both)
    assert normalize_answer(text) == official


def test_normalize_answer_removes_punctuation_before_articles() -> None:
    # Given answers where punctuation touches an article
    # When they are normalized
    possessive = normalize_answer("the farmer's")
    hyphenated = normalize_answer("the-end")
    # Then punctuation went first: "the farmers" -> "farmers", and "theend" keeps its "the"
    assert possessive == "farmers"
    assert hyphenated == "theend"


def test_exact_match_compares_normalized_answers() -> None:
    # Given answers that differ only in case, punctuation and articles, and one that differs
    # When exact match is computed
    same = exact_match("The Farmer!", "farmer")
    different = exact_match("farmer", "farmers")
    # Then only the first pair matches
    assert same == 1.0
    assert different == 0.0


# --- F1 ------------------------------------------------------------------------------------------


def test_f1_on_partial_overlap_is_the_harmonic_mean_of_token_precision_and_recall() -> None:
    # Given a reference and a prediction sharing some tokens
    reference = "a big bucket of water"  # -> [big, bucket, of, water] (4 tokens)
    prediction = "bucket full of water, please"  # -> [bucket, full, of, water, please] (5)
    # When F1 is computed
    result = f1_score(reference, prediction)
    # Then common = {bucket, of, water} = 3; P = 3/5, R = 3/4;
    # F1 = 2 * (9/20) / (27/20) = 2/3
    assert result == pytest.approx(2 / 3, abs=TOLERANCE)


def test_f1_counts_tokens_as_a_multiset() -> None:
    # Given a reference that repeats a token the prediction has once
    # When F1 is computed
    result = f1_score("no no", "no")
    # Then common = 1 (min of counts); P = 1/1, R = 1/2; F1 = 2 * (1/2) / (3/2) = 2/3
    assert result == pytest.approx(2 / 3, abs=TOLERANCE)


def test_f1_is_zero_when_no_token_is_shared() -> None:
    # Given answers with no token in common
    # When F1 is computed
    result = f1_score("rubbed her face", "started laughing")
    # Then it is 0
    assert result == 0.0


def test_f1_and_exact_match_of_empty_against_empty_are_one() -> None:
    # Given two answers that both normalize to nothing ("the" is an article)
    # When they are scored
    f1_values = (f1_score("", ""), f1_score("the", ""), f1_score("", " . "))
    em_value = exact_match("An", "")
    # Then they agree on "no answer": 1
    assert f1_values == (1.0, 1.0, 1.0)
    assert em_value == 1.0


def test_f1_and_exact_match_of_empty_against_non_empty_are_zero() -> None:
    # Given one empty and one non-empty answer, in both positions
    # When they are scored
    f1_values = (f1_score("", "white"), f1_score("white", "a"))
    em_value = exact_match("white", "")
    # Then both are 0
    assert f1_values == (0.0, 0.0)
    assert em_value == 0.0


# --- turn scores ---------------------------------------------------------------------------------


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


# --- human performance on the official CoQA dev sample ------------------------------------------

# turn_id -> (references [main answer, additional "0", "1", "2"], expected EM, expected F1),
# worked out by hand from the normalized references (F1 of two answers = 2 * common / (m + n)).
EXPECTED_HUMAN: dict[int, tuple[tuple[str, ...], Fraction, Fraction]] = {
    # all "white": every reference has an identical other -> 1, 1
    1: (("white", "white", "white", "white"), Fraction(1), Fraction(1)),
    # "in barn" x3, "in barn near": the three "in barn" find a twin (1, 1);
    # "in barn near" vs "in barn": EM 0, F1 2*2/(3+2) = 4/5. EM 3/4, F1 (3 + 4/5)/4 = 19/20
    2: (
        ("in a barn", "in a barn", "in a barn", "in a barn near"),
        Fraction(3, 4),
        Fraction(19, 20),
    ),
    # "no" x4 after lower-casing -> 1, 1
    3: (("no", "no", "No", "no"), Fraction(1), Fraction(1)),
    # [with her mommy and 5 sisters] (6) vs [her mommy and 5 other sisters] (6) x3:
    # the first has no twin, common 5 -> F1 10/12 = 5/6; the three others have twins.
    # EM 3/4, F1 (5/6 + 3)/4 = 23/24
    4: (
        (
            "with her mommy and 5 sisters",
            "her mommy and 5 other sisters",
            "her mommy and 5 other sisters",
            "her mommy and 5 other sisters",
        ),
        Fraction(3, 4),
        Fraction(23, 24),
    ),
    # [orange and white] (3), [orange with white tiger stripes] (5), [orange] x2.
    # r0: vs r1 common 2 -> 4/8 = 1/2, vs orange 2/4 = 1/2 -> 1/2, EM 0
    # r1: vs r0 1/2, vs orange 2/6 = 1/3 -> 1/2, EM 0
    # r2, r3: twin "orange" -> 1, 1.  EM 2/4 = 1/2, F1 (1/2 + 1/2 + 2)/4 = 3/4
    5: (
        ("orange and white", "orange with white tiger stripes", "orange", "orange"),
        Fraction(1, 2),
        Fraction(3, 4),
    ),
    # "no" x4 -> 1, 1
    6: (("no", "no", "No", "no"), Fraction(1), Fraction(1)),
    # two pairs of twins ("she painted herself" x2, "paint herself like them" x2) -> 1, 1
    7: (
        (
            "she painted herself",
            "she painted herself",
            "paint herself like them",
            "paint herself like them",
        ),
        Fraction(1),
        Fraction(1),
    ),
    # punctuation goes before articles: [farmer], [farmers], [old farmers], [farmers].
    # "farmer": no shared token with any other -> 0, 0 ("farmer" != "farmers")
    # "farmers" (x2): twin -> 1, 1
    # "old farmers": vs "farmers" 2*1/(2+1) = 2/3, EM 0
    # EM 2/4 = 1/2, F1 (0 + 1 + 2/3 + 1)/4 = 2/3
    8: (
        ("the farmer", "the farmer's", "the old farmer's", "the farmer's"),
        Fraction(1, 2),
        Fraction(2, 3),
    ),
    # [they started laughing] x2: twins -> 1, 1; [rubbed her face]: nothing shared -> 0, 0;
    # [started laughing] vs [they started laughing]: 2*2/(2+3) = 4/5, EM 0.
    # EM 2/4 = 1/2, F1 (2 + 0 + 4/5)/4 = 7/10
    9: (
        ("they started laughing", "they started laughing", "rubbed her face", "started laughing"),
        Fraction(1, 2),
        Fraction(7, 10),
    ),
    # all different: r0 [bucket of water] (3), r1 [dropped her into big bucket of water] (7),
    # r2 [into big bucket of water] (5), r3 [big bucket of water] (4).
    # pairs: r0r1 6/10, r0r2 6/8, r0r3 6/7, r1r2 10/12, r1r3 8/11, r2r3 8/9.
    # maxima: r0 6/7, r1 5/6, r2 8/9, r3 8/9 (8/9 > 6/7).  EM 0,
    # F1 (6/7 + 5/6 + 16/9)/4 = (108 + 105 + 224)/126/4 = 437/504
    10: (
        (
            "a bucket of water",
            "dropped her into a big bucket of water",
            "into a big bucket of water",
            "a big bucket of water",
        ),
        Fraction(0),
        Fraction(437, 504),
    ),
    # all "licked her face" -> 1, 1
    11: (
        ("licked her face", "licked her face", "licked her face", "licked her face"),
        Fraction(1),
        Fraction(1),
    ),
    # "no" x4 -> 1, 1
    12: (("no", "no", "No", "no"), Fraction(1), Fraction(1)),
}
# overall EM = (6*1 + 3/4 + 3/4 + 1/2 + 1/2 + 1/2 + 0)/12 = 9/12 = 3/4          -> 75.0
# overall F1 = (6 + 19/20 + 23/24 + 3/4 + 2/3 + 7/10 + 437/504)/12
#            = (6 + 12328/2520)/12 = (6 + 1541/315)/12 = 3431/3780           -> 90.767...
EXPECTED_OVERALL_EM = Fraction(3, 4)
EXPECTED_OVERALL_F1 = Fraction(3431, 3780)


@pytest.fixture(scope="module")
def coqa_sample_references() -> dict[int, list[str]]:
    """References per turn of the official sample: main answer, then additional answers."""
    if not COQA_SAMPLE.is_file():
        message = f"CoQA sample not found: {COQA_SAMPLE}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    dataset: dict[str, Any] = json.loads(COQA_SAMPLE.read_text(encoding="utf-8"))
    (story,) = dataset["data"]
    answer_lists = [story["answers"], *story["additional_answers"].values()]
    references: dict[int, list[str]] = {}
    for question in story["questions"]:
        turn_id = question["turn_id"]
        references[turn_id] = [
            next(a["input_text"] for a in answers if a["turn_id"] == turn_id)
            for answers in answer_lists
        ]
    return references


def test_official_sample_has_the_references_the_expectations_were_worked_out_from(
    coqa_sample_references: dict[int, list[str]],
) -> None:
    # Given the official sample's references per turn
    # When they are compared with the table worked out by hand
    from_table = {turn: list(refs) for turn, (refs, _, _) in EXPECTED_HUMAN.items()}
    # Then they are the same 12 turns with the same four references each
    assert coqa_sample_references == from_table


@pytest.mark.parametrize("turn_id", sorted(EXPECTED_HUMAN))
def test_human_score_of_each_official_sample_turn_matches_the_hand_computed_value(
    coqa_sample_references: dict[int, list[str]], turn_id: int
) -> None:
    # Given the four references of one turn of the official sample
    references = coqa_sample_references[turn_id]
    _, expected_em, expected_f1 = EXPECTED_HUMAN[turn_id]
    # When human performance is computed
    result = human_score_turn(references)
    # Then it matches the value worked out by hand
    assert result.em == pytest.approx(float(expected_em), abs=TOLERANCE)
    assert result.f1 == pytest.approx(float(expected_f1), abs=TOLERANCE)


def test_human_performance_on_the_official_sample_story_matches_the_hand_computed_average(
    coqa_sample_references: dict[int, list[str]],
) -> None:
    # Given every turn of the official sample story
    scores = [human_score_turn(refs) for refs in coqa_sample_references.values()]
    # When the turns are averaged and put on the official scale
    overall_em = as_percent(sum(s.em for s in scores) / len(scores))
    overall_f1 = as_percent(sum(s.f1 for s in scores) / len(scores))
    # Then EM = 75.0 and F1 = 90.767... as worked out by hand
    assert len(scores) == 12
    assert overall_em == pytest.approx(float(EXPECTED_OVERALL_EM * 100), abs=TOLERANCE)
    assert overall_f1 == pytest.approx(float(EXPECTED_OVERALL_F1 * 100), abs=TOLERANCE)
