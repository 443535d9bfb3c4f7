"""The simulator's judge model (`evalfleet/sim-judge`): grades an answer deterministically
from the references in the judge prompt (docs/architecture.md, "Simulator").

It reads the prompt with the workers' own reader (workers/judge_prompt.py) and compares
with the project's CoQA/SQuAD normalizer: correct when the answer holds a reference (as
whole normalized tokens) or has a high token F1 with one; not attempted when it declines;
incorrect otherwise; a question without references is answered correctly only by declining.
Always two lines, the verdict and a one-line reason, as the prompt asks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalfleet.aggregator.metrics import f1_score, normalize_answer
from evalfleet.workers.judge_prompt import (
    CORRECT,
    INCORRECT,
    NOT_ATTEMPTED,
    NotAJudgePrompt,
    format_judge_reply,
    read_judge_prompt,
)

__all__ = ["HIGH_F1", "declines", "grade", "judge_reply"]

# Token F1 with a reference from which a paraphrase counts as saying the same.
HIGH_F1 = 0.6
# Normalized phrases of an answer that declines (the prompt's "unknown", a chat model's
# "I don't know", "The story does not say"...).
_DECLINING = (
    "unknown", "i dont know", "i do not know", "not stated", "not mentioned",
    "does not say", "doesnt say", "does not mention", "doesnt mention", "not specified",
    "cannot be determined", "cant be determined", "no answer", "not given", "not known",
)  # fmt: skip
_SHORT_ANSWER_TOKENS = 10  # a declining phrase inside a longer answer is a claim, not a refusal


def declines(answer: str) -> bool:
    """Whether the answer says nothing, or that the story does not tell."""
    normalized = normalize_answer(answer)
    if not normalized:
        return True
    if len(normalized.split()) > _SHORT_ANSWER_TOKENS:
        return False
    padded = f" {normalized} "
    return any(f" {phrase} " in padded for phrase in _DECLINING)


def grade(references: Sequence[str], answer: str) -> tuple[str, str]:
    """The verdict on `answer` and its one-line reason."""
    if not references:
        if declines(answer):
            return CORRECT, "the story does not answer this, and the answer says so"
        return INCORRECT, "the story does not answer this, yet the answer gives one"
    if declines(answer):
        return NOT_ATTEMPTED, "the answer declines to answer"
    padded = f" {normalize_answer(answer)} "
    for reference in references:
        expected = normalize_answer(reference)
        if expected and f" {expected} " in padded:
            return CORRECT, f"the answer states the reference {reference!r}"
    best, score = max(((r, f1_score(r, answer)) for r in references), key=lambda p: p[1])
    if score >= HIGH_F1:
        return CORRECT, f"the answer matches the reference {best!r} (F1 {score:.2f})"
    return INCORRECT, f"the answer matches no reference (best F1 {score:.2f})"


def judge_reply(messages: Sequence[Any]) -> str:
    """The judge's reply to a chat request: graded from the last user message when it is a
    judge prompt; a reply in the format saying why not otherwise."""
    user = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    try:
        prompt = read_judge_prompt(user[-1] if user and isinstance(user[-1], str) else "")
    except NotAJudgePrompt as exc:
        return format_judge_reply(NOT_ATTEMPTED, f"not a judge prompt ({exc})")
    return format_judge_reply(*grade(prompt.references, prompt.answer))
