"""The simulated readers say the story does not answer a question about something it never
mentions; every question of the CoQA sample is answered as before."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from evalfleet.schema.payloads import HistoryMode
from evalfleet.simulator.conversation import parse_messages
from evalfleet.simulator.reader import answer, off_the_story
from evalfleet.workers.prompts import NO_ANSWER, build_messages

STORY = "Paris is the capital of France. The Eiffel Tower was built in 1889 for a world fair."


@pytest.mark.parametrize("seed", range(5))
def test_a_question_about_a_name_the_story_never_mentions_is_not_answered(seed: int) -> None:
    # Given a question about the Louvre, which the story neither names nor shares a word with
    question = "Who designed the Louvre Pyramid?"
    # Then the fine-tune-like reader answers the prompt's phrase, the base-like one its own
    assert answer("concise", STORY, question, random.Random(seed), 0.0) == NO_ANSWER
    assert answer("verbose", STORY, question, random.Random(seed), 0.7) == "I don't know."


def test_a_question_sharing_a_word_with_the_story_is_answered() -> None:
    # Given questions that name something absent but share a word ("built"), or name nothing
    # Then the readers answer them (SQuAD 2.0's adversarial questions fool models so too)
    assert not off_the_story(STORY, "When was Lyon built?")
    assert not off_the_story(STORY, "What did they do next?")
    assert off_the_story(STORY, "How long is the Nile?")
    assert answer("concise", STORY, "When was Lyon built?", random.Random(0), 0.0) != NO_ANSWER


def test_no_question_of_the_coqa_sample_is_taken_as_off_the_story(
    shared_file: Callable[[str], Path],
) -> None:
    # Given the 20-story CoQA sample `make demo` runs, asked in every history mode
    path = shared_file("coqa/coqa-validation-first20.jsonl")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for record in records:
        pairs = zip(record["questions"], record["answers"]["input_text"], strict=True)
        turns = [(i, q, (a,)) for i, (q, a) in enumerate(pairs, start=1)]
        for turn, _, _ in turns:
            for mode in HistoryMode:
                c = parse_messages(build_messages(record["story"], turns, turn, mode, {}))
                # Then none is: the demo's answers, and so its numbers, are what they were
                assert not off_the_story(c.story, c.question), c.question
