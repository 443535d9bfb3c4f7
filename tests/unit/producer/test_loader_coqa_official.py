"""The official CoQA JSON keeps all four references per question (real dev-set sample)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from evalfleet.producer.loaders.coqa_official import load_coqa_official

SAMPLE = "coqa/coqa-dev-v1.0-sample.json"


@pytest.fixture
def sample(shared_file: Callable[[str], Path]) -> Path:
    return shared_file(SAMPLE)


def test_the_official_sample_has_one_story_and_12_questions(sample: Path) -> None:
    # Given the first story of coqa-dev-v1.0.json
    # When it is loaded
    dataset = load_coqa_official(sample)
    # Then it has one story keyed by its id, with 12 turns numbered 1..12
    (story,) = dataset.stories
    assert story.key == "3dr23u6we5exclen4th8uq9rb42tel"
    assert story.source == "mctest"
    assert [q.turn for q in story.questions] == list(range(1, 13))
    assert dataset.question_count == 12


def test_official_coqa_keeps_all_four_references(sample: Path) -> None:
    # Given the official sample
    # When it is loaded
    questions = load_coqa_official(sample).stories[0].questions
    # Then every question has four references: the main answer, then sets "0", "1", "2"
    assert all(len(q.references) == 4 for q in questions)
    assert questions[0].text == "What color was Cotton?"
    assert questions[0].references == ("white", "white", "white", "white")
    assert questions[1].references == ("in a barn", "in a barn", "in a barn", "in a barn near")
    assert questions[2].references == ("no", "no", "No", "no")
    assert questions[4].references == (
        "orange and white",
        "orange with white tiger stripes",
        "orange",
        "orange",
    )


def test_references_are_matched_by_turn_id_not_by_position(sample: Path, tmp_path: Path) -> None:
    # Given the sample with every answer list reversed
    document = json.loads(sample.read_text(encoding="utf-8"))
    story = document["data"][0]
    story["answers"].reverse()
    for answers in story["additional_answers"].values():
        answers.reverse()
    shuffled = tmp_path / "reversed.json"
    shuffled.write_text(json.dumps(document), encoding="utf-8")
    # When both are loaded
    # Then the questions get the same references
    assert load_coqa_official(shuffled).stories == load_coqa_official(sample).stories


def test_a_file_without_additional_answers_gives_one_reference(
    sample: Path, tmp_path: Path
) -> None:
    # Given the sample without additional answers, like the official train file
    document = json.loads(sample.read_text(encoding="utf-8"))
    del document["data"][0]["additional_answers"]
    train_like = tmp_path / "train-like.json"
    train_like.write_text(json.dumps(document), encoding="utf-8")
    # When it is loaded
    questions = load_coqa_official(train_like).stories[0].questions
    # Then each question has its main answer only
    assert questions[0].references == ("white",)
