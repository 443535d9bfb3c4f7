"""Messages built for each history mode."""

from __future__ import annotations

import pytest

from evalfleet.schema.payloads import HistoryMode
from evalfleet.workers.prompts import NO_ANSWER, build_messages

QUESTIONS = [
    (1, "What color was the cat?", ("white",)),
    (2, "Where did she live?", ("in a barn",)),
    (3, "Was she alone?", ("no",)),
]


def roles_and_contents(messages: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages[1:]]


def test_gold_history_carries_earlier_questions_with_their_gold_answers() -> None:
    # Given a story with three turns / When turn 3 is asked in gold mode
    messages = build_messages("Once upon a time.", QUESTIONS, 3, HistoryMode.GOLD)
    # Then the story is in the system message and earlier turns carry gold answers
    assert messages[0]["role"] == "system" and "Once upon a time." in messages[0]["content"]
    assert roles_and_contents(messages) == [
        ("user", "What color was the cat?"),
        ("assistant", "white"),
        ("user", "Where did she live?"),
        ("assistant", "in a barn"),
        ("user", "Was she alone?"),
    ]


def test_model_history_carries_the_models_own_answers() -> None:
    own = {1: "a white cat", 2: "the barn"}
    messages = build_messages("Story.", QUESTIONS, 3, HistoryMode.MODEL, own)
    assert [c for r, c in roles_and_contents(messages) if r == "assistant"] == [
        "a white cat",
        "the barn",
    ]


def test_model_history_stands_in_unknown_for_an_earlier_turn_that_failed() -> None:
    messages = build_messages("Story.", QUESTIONS, 3, HistoryMode.MODEL, {1: "white"})
    assert [c for r, c in roles_and_contents(messages) if r == "assistant"] == ["white", "unknown"]


def test_questions_history_carries_earlier_questions_without_answers() -> None:
    messages = build_messages("Story.", QUESTIONS, 3, HistoryMode.QUESTIONS)
    assert roles_and_contents(messages) == [
        ("user", "What color was the cat?"),
        ("user", "Where did she live?"),
        ("user", "Was she alone?"),
    ]


def test_no_history_asks_the_current_question_alone() -> None:
    messages = build_messages("Story.", QUESTIONS, 2, HistoryMode.NONE)
    assert roles_and_contents(messages) == [("user", "Where did she live?")]


def test_first_turn_is_the_same_in_every_mode() -> None:
    built = {
        build_messages("S.", QUESTIONS, 1, mode)[1:]
        == [{"role": "user", "content": "What color was the cat?"}]
        for mode in HistoryMode
    }  # noqa: E501
    assert built == {True}


def test_asking_a_turn_the_story_does_not_have_is_an_error() -> None:
    with pytest.raises(ValueError, match="turn 9"):
        build_messages("S.", QUESTIONS, 9, HistoryMode.GOLD)


def test_the_prompt_says_how_to_answer_when_the_story_does_not_say() -> None:
    # Given any story / Then the system message names the phrase scoring reads as no answer
    system = build_messages("S.", QUESTIONS, 1, HistoryMode.GOLD)[0]["content"]
    assert f"If the story does not say, answer {NO_ANSWER}." in system
    assert NO_ANSWER == "unknown"


def test_gold_history_answers_a_question_without_an_answer_with_the_prompts_phrase() -> None:
    # Given a second turn the story does not answer (no references)
    questions = [QUESTIONS[0], (2, "Who designed the Louvre?", ()), QUESTIONS[2]]
    # When turn 3 is asked in gold mode
    messages = build_messages("Story.", questions, 3, HistoryMode.GOLD)
    # Then the gold answer of turn 2 is what the model was asked to say
    assert [c for r, c in roles_and_contents(messages) if r == "assistant"] == ["white", "unknown"]
