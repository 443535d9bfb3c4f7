"""SQuAD v1.1: each paragraph is a story of independent questions (real dev set)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from evalfleet.producer.dataset import Dataset
from evalfleet.producer.loaders.squad import load_squad

DEV = "squad/squad-dev-v1.1.json"


@pytest.fixture
def squad_dev(shared_file: Callable[[str], Path]) -> Dataset:
    return load_squad(shared_file(DEV))


def test_the_squad_dev_set_has_2067_paragraphs_and_10570_questions(squad_dev: Dataset) -> None:
    # Given the full SQuAD v1.1 dev set, loaded
    # Then every paragraph is a story and every question is there
    assert len(squad_dev.stories) == 2067
    assert squad_dev.question_count == 10570


def test_paragraph_keys_are_unique_and_sources_are_titles(squad_dev: Dataset) -> None:
    # Given the loaded dev set
    # Then keys are "{title}#{paragraph index}", unique, and the source is the article title
    keys = [s.key for s in squad_dev.stories]
    assert len(set(keys)) == len(keys)
    assert keys[0] == "1973_oil_crisis#0"
    assert len({s.source for s in squad_dev.stories}) == 48


def test_every_answer_text_is_a_reference_in_order(squad_dev: Dataset) -> None:
    # Given the loaded dev set
    first = squad_dev.stories[0].questions[0]
    # Then the first question keeps its five answers as given, repeats included
    assert first.text == "When did the 1973 oil crisis begin?"
    assert first.references == ("October 1973", "October 1973", "October 1973", "October", "1973")
    assert first.turn == 1


def test_turns_are_numbered_from_one_in_each_paragraph(squad_dev: Dataset) -> None:
    # Given the loaded dev set
    # Then each paragraph numbers its questions 1..n
    assert all(
        [q.turn for q in story.questions] == list(range(1, len(story.questions) + 1))
        for story in squad_dev.stories
    )


def test_limit_counts_paragraphs(shared_file: Callable[[str], Path]) -> None:
    # Given the dev set
    # When five stories are asked for
    dataset = load_squad(shared_file(DEV), limit=5)
    # Then the first five paragraphs of the first article come back
    assert [s.key for s in dataset.stories] == [f"1973_oil_crisis#{i}" for i in range(5)]
