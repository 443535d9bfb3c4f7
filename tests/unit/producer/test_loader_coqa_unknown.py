"""CoQA's "unknown" answers: a question whose every reference is "unknown" has no answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from evalfleet.producer.loaders.coqa_official import load_coqa_official
from evalfleet.producer.loaders.coqa_unknown import coqa_references
from evalfleet.producer.loaders.hub_file import load_hub_file

FIRST20 = "coqa/coqa-validation-first20.jsonl"


def _official(tmp_path: Path, main: str, additional: list[str]) -> Path:
    """An official CoQA file of one story and one turn with the given answers."""

    def answer(text: str) -> dict[str, object]:
        start = -1 if text == "unknown" else 0
        return {"span_start": start, "span_end": start, "span_text": text, "input_text": text,
                "turn_id": 1}  # fmt: skip

    record = {
        "source": "mctest", "id": "s1", "filename": "f", "story": "Cotton was a kitten.",
        "questions": [{"input_text": "Were they excited?", "turn_id": 1}],
        "answers": [answer(main)],
        "additional_answers": {str(i): [answer(t)] for i, t in enumerate(additional)},
    }  # fmt: skip
    path = tmp_path / "coqa-dev.json"
    path.write_text(json.dumps({"data": [record]}), encoding="utf-8")
    return path


def test_the_hub_samples_unknown_answers_are_questions_without_references(
    shared_file: Callable[[str], Path],
) -> None:
    # Given the 20-story hub sample, where 5 answers are "unknown" (answer_start -1)
    dataset = load_hub_file(shared_file(FIRST20))
    # Then exactly those 5 questions have no references
    without = [q.text for s in dataset.stories for q in s.questions if not q.references]
    assert without == [
        "What did they do with the note",
        "were they excited",
        "How did his body react to the tea?",
        "Were there cannibals?",
        "Why was he excommunicated then?",
    ]


def test_an_official_question_answered_unknown_by_everyone_has_no_references(
    tmp_path: Path,
) -> None:
    path = _official(tmp_path, "unknown", ["unknown", "Unknown", "unknown."])
    (question,) = load_coqa_official(path).stories[0].questions
    assert question.references == ()


def test_an_official_question_some_annotators_answered_keeps_every_reference(
    tmp_path: Path,
) -> None:
    # Given annotators who disagree: "unknown" for two, an answer for the others
    path = _official(tmp_path, "unknown", ["yes", "unknown", "yes"])
    (question,) = load_coqa_official(path).stories[0].questions
    # Then all four are kept as text, as the official CoQA script compares them
    assert question.references == ("unknown", "yes", "unknown", "yes")


def test_coqa_references_are_none_only_when_every_answer_is_unknown() -> None:
    assert coqa_references(["unknown"]) == ()
    assert coqa_references([" UNKNOWN! "]) == ()
    assert coqa_references(["an unknown man"]) == ("an unknown man",)
    assert coqa_references(["white", "unknown"]) == ("white", "unknown")
    assert coqa_references([""]) == ("",)
