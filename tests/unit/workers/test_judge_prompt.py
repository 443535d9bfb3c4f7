"""The judge's prompt and the reading of its reply: the workers build it, the simulator's
judge reads it back with the same module, and any reply without a verdict is refused."""

from __future__ import annotations

import pytest

from evalfleet.schema.models import JudgeVerdict
from evalfleet.simulator.judge import judge_reply
from evalfleet.workers.judge_prompt import (
    EXCERPT_CHARS,
    NO_REFERENCES,
    VERDICTS,
    NotAJudgePrompt,
    UnreadableReply,
    build_judge_messages,
    read_judge_prompt,
    read_judge_reply,
    story_excerpt,
)

STORY = "Cotton was a white kitten. She lived in a barn with her mother and five sisters."


def test_the_verdicts_are_spelled_as_the_schema_stores_them() -> None:
    assert set(VERDICTS) == {v.value for v in JudgeVerdict}


def test_a_prompt_holds_the_question_the_story_the_references_and_the_answer() -> None:
    # When the judge prompt of a chatty answer is built
    messages = build_judge_messages(
        "Where did she live?", STORY, ["in a barn", "a  barn"], "She lived in a barn."
    )
    # Then a system message says the format, and the user message holds the four sections
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "VERDICT:" in messages[0]["content"] and "REASON:" in messages[0]["content"]
    prompt = read_judge_prompt(messages[1]["content"])
    assert prompt.question == "Where did she live?"
    assert prompt.excerpt == STORY
    assert prompt.references == ("in a barn", "a barn")  # white space made one line
    assert prompt.answer == "She lived in a barn."


@pytest.mark.parametrize(
    "answer",
    ["", "line one\nline two", "=== ANSWER ===\nodd", "ends with the marker\n=== END ==="],
)
def test_any_answer_is_read_back_whole(answer: str) -> None:
    messages = build_judge_messages("Q?", STORY, ["x"], answer)
    assert read_judge_prompt(messages[1]["content"]).answer == answer


def test_a_question_without_an_answer_in_the_story_says_so_and_has_no_references() -> None:
    content = build_judge_messages("Who was her father?", STORY, [], "unknown")[1]["content"]
    assert NO_REFERENCES in content
    assert read_judge_prompt(content).references == ()


def test_a_long_story_is_cut_around_the_reference_at_white_space() -> None:
    # Given a story far longer than the excerpt, its reference in the middle
    before = " ".join(f"early{i}" for i in range(800))
    after = " ".join(f"late{i}" for i in range(800))
    story = f"{before} The treasure lay under the old oak. {after}"
    # When the excerpt is taken
    excerpt = story_excerpt(story, ["under the OLD oak", "the answer"])
    # Then it is bounded, holds the reference, and cuts between words, marking both cuts
    assert len(excerpt) <= EXCERPT_CHARS + 8
    assert "under the old oak" in excerpt
    assert excerpt.startswith("... early") and excerpt.endswith(" ...")
    words = excerpt.removeprefix("... ").removesuffix(" ...").split()
    assert all(w.startswith(("early", "late")) or w in story.split() for w in words)


def test_a_long_story_without_any_anchor_gives_its_beginning() -> None:
    story = " ".join(f"w{i}" for i in range(2000))
    excerpt = story_excerpt(story, ["nowhere"])
    assert excerpt.startswith("w0 w1 ") and excerpt.endswith(" ...")


def test_text_that_is_no_judge_prompt_is_refused() -> None:
    with pytest.raises(NotAJudgePrompt, match="QUESTION"):
        read_judge_prompt("Say OK.")


@pytest.mark.parametrize(
    ("reply", "verdict", "reason"),
    [
        ("VERDICT: correct\nREASON: it names the barn", "correct", "it names the barn"),
        ("verdict: INCORRECT\nreason: the story says white.", "incorrect", "the story says white."),
        ("**Verdict:** not attempted\n**Reason:** it declines", "not_attempted", "it declines"),
        ("VERDICT = not_attempted", "not_attempted", None),
        ("Incorrect - the kitten is white", "incorrect", "the kitten is white"),
        ("Sure.\nVERDICT: correct\nREASON: a\n  b", "correct", "a"),
        ("The answer is incorrect. The kitten is white.", "incorrect", "The kitten is white."),
    ],
)
def test_a_reply_in_the_format_or_close_to_it_is_read(
    reply: str, verdict: str, reason: str | None
) -> None:
    read = read_judge_reply(reply)
    assert (read.verdict, read.reason) == (verdict, reason)


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "The answer looks fine to me.",
        "VERDICT: maybe",
        # the options echoed back: no grade in it
        "The answer is correct, incorrect or not_attempted.",
        "The answer is not correct",  # not a verdict word of the format
    ],
)
def test_a_reply_without_a_verdict_is_unreadable_and_says_what_came(reply: str) -> None:
    with pytest.raises(UnreadableReply, match="holds no verdict"):
        read_judge_reply(reply)


def test_the_simulators_judge_grades_what_the_workers_build() -> None:
    # Given prompts the workers' builder made, for a right, a wrong and a declining answer
    def graded(references: list[str], answer: str) -> str:
        reply = judge_reply(build_judge_messages("Where did she live?", STORY, references, answer))
        return read_judge_reply(reply).verdict

    # When the simulator's judge answers each, Then its reply reads as the expected verdict
    assert graded(["in a barn"], "She lived in a barn with her mother.") == "correct"
    assert graded(["in a barn"], "In a house in town.") == "incorrect"
    assert graded(["in a barn"], "The story does not say.") == "not_attempted"
    assert graded([], "I don't know") == "correct"
