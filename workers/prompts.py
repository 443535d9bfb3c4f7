"""Chat messages for one turn of a conversation, in each history mode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from evalfleet.schema.payloads import HistoryMode

SYSTEM_PROMPT = (
    "Answer each question about the story below with a short phrase, taken from the story "
    "where possible. If the story does not say, answer unknown.\n\n"
    "{story}"
)
MISSING_ANSWER = "unknown"  # stands in for an earlier turn that failed, in `model` mode


def build_messages(
    story: str,
    questions: Sequence[tuple[int, str, Sequence[str]]],
    turn: int,
    history: HistoryMode,
    own_answers: Mapping[int, str] | None = None,
) -> list[dict[str, str]]:
    """Messages asking `turn`; `questions` holds (turn, question, references) in turn order."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT.format(story=story)}]
    current: str | None = None
    for number, question, references in questions:
        if number == turn:
            current = question
            break
        if history is HistoryMode.NONE:
            continue
        messages.append({"role": "user", "content": question})
        if history is HistoryMode.GOLD:
            messages.append({"role": "assistant", "content": references[0]})
        elif history is HistoryMode.MODEL:
            answer = (own_answers or {}).get(number) or MISSING_ANSWER
            messages.append({"role": "assistant", "content": answer})
    if current is None:
        raise ValueError(f"turn {turn} is not among the story's questions")
    messages.append({"role": "user", "content": current})
    return messages
