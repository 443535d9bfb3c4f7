"""The official CoQA/SQuAD scorer in ``aggregator.metrics`` on two answers: normalization,
exact match and F1."""

from __future__ import annotations

import re
import string

import pytest

from evalfleet.aggregator.metrics import exact_match, f1_score, normalize_answer

TOLERANCE = 1e-9


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
