"""The Hugging Face `stanfordnlp/coqa` record schema, read the same way from the hub and from files.

A record: `source`, `story`, `questions` (list of str) and `answers` {`input_text`, `answer_start`,
`answer_end`} (parallel lists). The hub schema carries one reference answer per question; an
answer "unknown" marks a question the story does not answer (producer/loaders/coqa_unknown.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from evalfleet.producer.dataset import Dataset, Question, Story
from evalfleet.producer.loaders._common import Fields, Place, StoryCollector, as_string
from evalfleet.producer.loaders.coqa_unknown import coqa_references

# Hand-made files sometimes leave out the domain; it only groups the report.
UNKNOWN_SOURCE = "unknown"


def story_from_hub_record(record: object, index: int, place: Place) -> tuple[Story, Place]:
    """The story in one record, and the place its key came from.

    The key is the record's `id` when it has one, else its index in the file or split.
    """
    fields = Fields(record, place)
    key, key_place = str(index), place
    if fields.has("id"):
        identifier = fields.get("id")
        if isinstance(identifier, bool) or not isinstance(identifier, str | int):
            raise place.at("id").invalid("must be a string or an integer")
        key = str(identifier)
        fields = Fields(record, place.identified(key))
        key_place = fields.place.at("id")

    text = fields.string("story", blank_ok=False)
    questions = fields.sequence("questions", empty_ok=False)
    answers = fields.mapping("answers")
    references = answers.sequence("input_text")
    if len(references) != len(questions):
        raise answers.place.at("input_text").invalid(
            f"has {len(references)} answers but field 'questions' has {len(questions)} questions"
        )
    question_list, reference_list = fields.place.at("questions"), answers.place.at("input_text")
    turns = tuple(
        Question(
            turn=index + 1,
            text=as_string(question, question_list.at(index), blank_ok=False),
            references=coqa_references([as_string(reference, reference_list.at(index))]),
        )
        for index, (question, reference) in enumerate(zip(questions, references, strict=True))
    )
    source = fields.string("source") if fields.has("source") else UNKNOWN_SOURCE
    return Story(key=key, source=source, text=text, questions=turns), key_place


def dataset_from_hub_records(
    records: Iterable[tuple[object, Place]], *, name: str, split: str, origin: str
) -> Dataset:
    """Every record validated and converted, in order; `records` pairs each with its place."""
    stories = StoryCollector()
    for index, (record, place) in enumerate(records):
        stories.add(*story_from_hub_record(record, index, place))
    return stories.dataset(name, split, origin)
