"""The simulated readers and the reading of chat messages, without HTTP."""

from __future__ import annotations

import random

import pytest

from evalfleet.simulator.config import SIM_BASE, SimConfig
from evalfleet.simulator.conversation import MessageError, greedy_rng, parse_messages, sampling_rng
from evalfleet.simulator.reader import answer
from evalfleet.simulator.text import sentences

STORY = (
    "Tom lived in a small house near the river. "
    "He had a red ball that his uncle Peter gave him. "
    "Every morning Tom played with the ball in the park. "
    "One day the ball rolled into the water and was lost. "
    "Tom was not happy, so his mother bought him a new kite."
)


def test_the_same_input_gives_the_same_answer() -> None:
    # Given two readers seeded from the same input
    # When both answer the same question
    first = answer("concise", STORY, "Who gave him the ball?", random.Random(7), 0.0)
    second = answer("concise", STORY, "Who gave him the ball?", random.Random(7), 0.0)
    # Then the answers are identical
    assert first == second


def test_the_verbose_reader_answers_with_a_story_sentence() -> None:
    # Given a verbose reader whose rng never makes a mistake nor chats
    class NoMistakes(random.Random):
        def random(self) -> float:
            return 0.99

    # When it is asked where Tom lived
    reply = answer("verbose", STORY, "Where did Tom live?", NoMistakes(), 0.0)
    # Then it answers with the whole matching sentence
    assert reply == "Tom lived in a small house near the river."


def test_the_concise_reader_extracts_short_spans_and_yes_no() -> None:
    # Given a concise reader that makes no mistakes
    class NoMistakes(random.Random):
        def random(self) -> float:
            return 0.99

    def ask(question: str) -> str:
        return answer("concise", STORY, question, NoMistakes(), 0.0)

    # When it is asked typed questions / Then it answers with short spans
    assert ask("What color was the ball?") == "red"
    assert ask("Who gave him the ball?") == "Peter"
    assert ask("Where did Tom live?").startswith("in a small house")
    assert ask("Was Tom happy?") == "no"
    assert ask("Did Tom play in the park?") == "yes"
    assert all(len(ask(q).split()) <= 4 for q in ("What did his mother buy?", "Who is Tom?"))


def test_a_reader_without_a_story_says_it_does_not_know() -> None:
    # Given an empty story / When either reader answers / Then it declines
    assert answer("concise", "", "Who?", random.Random(0), 0.0) == "unknown"
    assert answer("verbose", "  ", "Who?", random.Random(0), 0.0) == "I don't know."


def test_an_unknown_reader_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown reader kind"):
        answer("chatty", STORY, "Who?", random.Random(0), 0.0)


def test_abbreviations_and_decimals_do_not_end_sentences() -> None:
    # Given text with initials, titles, acronyms, prices and a quoted question
    text = 'It was R.J. who met Mr. Brown in the U.S. state. It cost $5.50 there. "Why?" she said.'
    # When it is split / Then only real sentence ends split it
    assert sentences(text) == [
        "It was R.J. who met Mr. Brown in the U.S. state.",
        "It cost $5.50 there.",
        '"Why?" she said.',
    ]


def test_the_story_is_the_system_message_without_its_instruction_line() -> None:
    # Given messages as the worker builds them in gold-history mode
    system = "Answer each question about the story below with a short phrase.\n\n" + STORY
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": "Where did Tom live?"},
        {"role": "assistant", "content": "near the river"},
        {"role": "user", "content": "What did he have?"},
    ]
    # When they are read as a conversation
    conversation = parse_messages(messages)
    # Then the story, the earlier turn and the current question are separated
    assert conversation.story == STORY
    assert conversation.history == (("Where did Tom live?", "near the river"),)
    assert conversation.question == "What did he have?"


def test_questions_only_history_pairs_questions_with_empty_answers() -> None:
    messages = [
        {"role": "system", "content": STORY},
        {"role": "user", "content": "Where did Tom live?"},
        {"role": "user", "content": [{"type": "text", "text": "What did he have?"}]},
    ]
    conversation = parse_messages(messages)
    assert conversation.history == (("Where did Tom live?", ""),)
    assert conversation.question == "What did he have?"


def test_messages_that_are_not_a_list_of_objects_are_refused() -> None:
    with pytest.raises(MessageError):
        parse_messages([])
    with pytest.raises(MessageError):
        parse_messages(["hello"])
    with pytest.raises(MessageError):
        parse_messages([{"role": "user", "content": 42}])


def test_seeds_do_not_matter_at_temperature_zero_but_do_when_sampling() -> None:
    # Given one conversation asked of the verbose reader with many seeds
    messages = [{"role": "system", "content": STORY}, {"role": "user", "content": "Who?"}]
    model = SIM_BASE

    def reply(seed: int, temperature: float) -> str:
        noise = sampling_rng(model, messages, seed, temperature) if temperature else None
        rng = greedy_rng(model, messages)
        return answer("verbose", STORY, "Where did Tom play?", rng, temperature, sampling_rng=noise)

    # When it answers at temperature 0 and at temperature 2 / Then only sampling varies
    assert len({reply(seed, 0.0) for seed in range(20)}) == 1
    assert len({reply(seed, 2.0) for seed in range(20)}) > 1
    assert reply(3, 2.0) == reply(3, 2.0)


def test_config_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="sum to at most 1"):
        SimConfig(fault_429=0.7, fault_503=0.7)
    with pytest.raises(ValueError, match="within 0..1"):
        SimConfig(fault_reset=-0.1)
    with pytest.raises(ValueError, match="unknown reader kind"):
        SimConfig(models={"my/model": "brilliant"})
    with pytest.raises(ValueError, match="rpm limit"):
        SimConfig(rpm_per_model=0)
