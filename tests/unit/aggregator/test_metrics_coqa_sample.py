"""Human performance on the official CoQA dev sample, against values worked out by hand (the
scorer is ``aggregator.metrics``)."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from evalfleet.aggregator.metrics import as_percent, human_score_turn

TOLERANCE = 1e-9
COQA_SAMPLE = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "data"
    / "coqa"
    / "coqa-dev-v1.0-sample.json"
)


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
