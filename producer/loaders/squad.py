"""SQuAD v1.1 and v2.0 JSON: every paragraph is a story whose questions are independent turns.

`data[]`: `title`, `paragraphs[]`: `context`, `qas[]`: `id`, `question`, `answers[]`: `text`.
The SQuAD scorer takes the max over all ground truths, so every answer text is kept, in order
(repeats included, as given). SQuAD 2.0 adds `is_impossible`: such a question has no `answers`
(it is stored without references, a question without an answer) and its `plausible_answers`
are kept on the question, never as references.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
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


def load_squad(path: str | Path, split: str = "validation", limit: int | None = None) -> Dataset:
    """The first `limit` (default: all) paragraphs of a SQuAD file, as stories."""
    check_limit(limit)
    return dataset_from_squad_document(
        read_json(Path(path)), name=str(path), split=split, limit=limit
    )


def dataset_from_squad_document(
    document: object, *, name: str, split: str, limit: int | None
) -> Dataset:
    """The paragraphs of a parsed SQuAD document as stories keyed "{title}#{paragraph index}"."""
    stories = StoryCollector()
    for title, paragraph, key, title_place in islice(_paragraphs(document, name), limit):
        stories.add(_story(title, paragraph, key), title_place)
    return stories.dataset(name, split, name)


def _paragraphs(document: object, name: str) -> Iterator[tuple[str, Fields, str, Place]]:
    """Each paragraph with its article's title, its story key and where the title was read."""
    for article_index, value in enumerate(records_of(document, name)):
        article = Fields(value, Place(name, f"article {article_index}"))
        title = article.string("title", blank_ok=False)
        paragraphs = article.sequence("paragraphs", empty_ok=False)
        for paragraph_index, paragraph in enumerate(paragraphs):
            label = f"article {article_index} ({title}), paragraph {paragraph_index}"
            key = f"{title}#{paragraph_index}"
            yield title, Fields(paragraph, Place(name, label)), key, article.place.at("title")


def _story(title: str, paragraph: Fields, key: str) -> Story:
    context = paragraph.string("context", blank_ok=False)
    questions = tuple(
        _question(turn, Fields(value, place))
        for turn, (value, place) in enumerate(
            items(paragraph.sequence("qas", empty_ok=False), paragraph.place.at("qas")), start=1
        )
    )
    return Story(key=key, source=title, text=context, questions=questions)


def _question(turn: int, qa: Fields) -> Question:
    text = qa.string("question", blank_ok=False)
    impossible = qa.boolean("is_impossible") if qa.has("is_impossible") else False
    # Only a question marked impossible may lack answers: elsewhere an empty list is a mistake.
    answers = qa.sequence("answers", empty_ok=impossible)
    if impossible and answers:
        raise qa.place.at("answers").invalid(
            "must be empty: the question is marked is_impossible (its guesses go in "
            "'plausible_answers')"
        )
    plausible = qa.sequence("plausible_answers") if qa.has("plausible_answers") else []
    return Question(
        turn=turn,
        text=text,
        references=_texts(answers, qa.place.at("answers")),
        plausible_answers=_texts(plausible, qa.place.at("plausible_answers")),
    )


def _texts(answers: list[object], place: Place) -> tuple[str, ...]:
    """The `text` of every answer object in a list, in order."""
    return tuple(Fields(value, where).string("text") for value, where in items(answers, place))
