"""The official CoQA JSON (`coqa-dev-v1.0.json`), where a question can have several references.

`data[]`: `source`, `id`, `filename`, `story`, `questions[{input_text, turn_id}]`,
`answers[{input_text, turn_id, span_start, span_end, span_text}]` and, in the dev set,
`additional_answers` {"0", "1", "2": [answers]}. The official scorer averages leave-one-out
maxima over all the references, so each question keeps every one: the main answer first, then
the additional ones in key order. A question all of whose references are "unknown" has no
answer (producer/loaders/coqa_unknown.py).
"""

from __future__ import annotations

from pathlib import Path

from evalfleet.producer.dataset import Dataset, Question, Story
from evalfleet.producer.loaders._common import (
    Fields,
    Place,
    StoryCollector,
    check_limit,
    items,
    read_json,
    records_of,
)
from evalfleet.producer.loaders.coqa_unknown import coqa_references


def load_coqa_official(
    path: str | Path, split: str = "validation", limit: int | None = None
) -> Dataset:
    """The first `limit` (default: all) stories of an official CoQA file; keys are record ids."""
    check_limit(limit)
    return dataset_from_official_document(
        read_json(Path(path)), name=str(path), split=split, limit=limit
    )


def dataset_from_official_document(
    document: object, *, name: str, split: str, limit: int | None
) -> Dataset:
    """The stories of a parsed official CoQA document; `name` is its path."""
    stories = StoryCollector()
    for index, record in enumerate(records_of(document, name)[:limit]):
        stories.add(*_story(record, Place(name, f"record {index}")))
    return stories.dataset(name, split, name)


def _story(record: object, place: Place) -> tuple[Story, Place]:
    key = Fields(record, place).string("id", blank_ok=False)
    fields = Fields(record, place.identified(key))
    text = fields.string("story", blank_ok=False)
    answer_sets = [_answers_by_turn(fields, "answers")]
    if fields.has("additional_answers"):
        additional = fields.mapping("additional_answers")
        # Keys are "0", "1", "2"; sort by length first so that "10" would follow "9".
        for set_name in sorted(additional.names(), key=lambda name: (len(name), name)):
            answer_sets.append(_answers_by_turn(additional, set_name))

    questions: list[Question] = []
    previous_turn = 0
    for value, question_place in items(
        fields.sequence("questions", empty_ok=False), fields.place.at("questions")
    ):
        question = Fields(value, question_place)
        turn = question.integer("turn_id")
        if turn <= previous_turn:
            raise question.place.at("turn_id").invalid(
                f"must be greater than {previous_turn} (turns count up from 1), got {turn}"
            )
        previous_turn = turn
        text_of_question = question.string("input_text", blank_ok=False)
        if turn not in answer_sets[0]:
            raise fields.place.at("answers").invalid(f"has no answer with turn_id {turn}")
        # Matched by turn_id, not position; an additional set missing a turn just gives fewer.
        references = coqa_references([answers[turn] for answers in answer_sets if turn in answers])
        questions.append(Question(turn=turn, text=text_of_question, references=references))

    source = fields.string("source")
    story = Story(key=key, source=source, text=text, questions=tuple(questions))
    return story, fields.place.at("id")


def _answers_by_turn(parent: Fields, name: str) -> dict[int, str]:
    """The `input_text` of each answer in the list `parent[name]`, by `turn_id`."""
    by_turn: dict[int, str] = {}
    for value, place in items(parent.sequence(name), parent.place.at(name)):
        answer = Fields(value, place)
        turn = answer.integer("turn_id")
        if turn in by_turn:
            raise answer.place.at("turn_id").invalid(f"repeats turn {turn}")
        by_turn[turn] = answer.string("input_text")
    return by_turn
