"""SQuAD 2.0: questions marked `is_impossible` are loaded without references (a small file
written for these tests: 2 articles, 4 answerable and 3 impossible questions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.producer.loaders.squad import load_squad
from evalfleet.schema.errors import DatasetError

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "squad-v2-sample.json"


def _paragraph(**qa: object) -> dict[str, object]:
    """A SQuAD 2.0 document of one paragraph and one question with the given fields."""
    question: dict[str, object] = {"id": "q1", "question": "Who?", **qa}
    paragraph = {"context": "Cotton was a white kitten.", "qas": [question]}
    return {"version": "v2.0", "data": [{"title": "Cotton", "paragraphs": [paragraph]}]}


def _error(tmp_path: Path, document: object) -> str:
    path = tmp_path / "squad2.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(DatasetError) as error:
        load_squad(path)
    return str(error.value).removeprefix(f"{path}: ")


def test_the_squad2_sample_loads_with_its_impossible_questions_without_references() -> None:
    # Given the SQuAD 2.0 sample, read as `--dataset` reads it
    dataset = load_dataset_spec(str(SAMPLE))
    # Then both paragraphs are stories, and the 3 impossible questions have no references
    assert [s.key for s in dataset.stories] == ["Paris#0", "Amazon_River#0"]
    assert dataset.question_count == 7
    paris, amazon = dataset.stories
    assert [q.references for q in paris.questions] == [
        ("Paris", "Paris"),
        ("1889", "in 1889"),
        (),
        (),
    ]
    assert [q.references for q in amazon.questions] == [
        ("Brazil and Peru", "Brazil and Peru"),
        (),
        ("many kinds of fish", "fish"),
    ]


def test_plausible_answers_are_kept_but_never_references() -> None:
    # Given the sample's impossible question about the Louvre, with a plausible answer
    paris = load_squad(SAMPLE).stories[0]
    louvre = paris.questions[2]
    # Then the plausible answer is kept on the question, not as a reference
    assert louvre.text == "Who designed the Louvre Pyramid?"
    assert louvre.plausible_answers == ("Eiffel",)
    assert louvre.references == ()
    # And an answerable question has none
    assert paris.questions[0].plausible_answers == ()


def test_plausible_answers_do_not_change_the_fingerprint(tmp_path: Path) -> None:
    # Given the sample, and a copy without any plausible answers
    document = json.loads(SAMPLE.read_text(encoding="utf-8"))
    for article in document["data"]:
        for qa in article["paragraphs"][0]["qas"]:
            qa.pop("plausible_answers", None)
    copy = tmp_path / "squad2.json"
    copy.write_text(json.dumps(document), encoding="utf-8")
    # Then both score the same, so they are the same data
    assert load_squad(copy).fingerprint == load_squad(SAMPLE).fingerprint


def test_is_impossible_false_with_answers_is_an_answerable_question(tmp_path: Path) -> None:
    path = tmp_path / "squad2.json"
    path.write_text(
        json.dumps(_paragraph(answers=[{"text": "Cotton"}], is_impossible=False)), "utf-8"
    )
    (question,) = load_squad(path).stories[0].questions
    assert question.references == ("Cotton",)


def test_an_impossible_question_with_answers_is_refused(tmp_path: Path) -> None:
    # Given a question marked impossible that still has an answer
    document = _paragraph(answers=[{"text": "Cotton"}], is_impossible=True)
    # Then the field is named, with where such answers go
    assert _error(tmp_path, document) == (
        "article 0 (Cotton), paragraph 0: field 'qas[0].answers' must be empty: the question "
        "is marked is_impossible (its guesses go in 'plausible_answers')"
    )


def test_is_impossible_that_is_not_a_boolean_is_refused(tmp_path: Path) -> None:
    document = _paragraph(answers=[], is_impossible="yes")
    assert _error(tmp_path, document) == (
        "article 0 (Cotton), paragraph 0: field 'qas[0].is_impossible' must be true or false, "
        "got a string"
    )


def test_a_plausible_answer_without_text_is_refused(tmp_path: Path) -> None:
    document = _paragraph(answers=[], is_impossible=True, plausible_answers=[{"start": 0}])
    assert _error(tmp_path, document) == (
        "article 0 (Cotton), paragraph 0: missing field 'qas[0].plausible_answers[0].text'"
    )
