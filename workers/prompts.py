"""Chat messages for one turn of a conversation, in each history mode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from evalfleet.schema.payloads import HistoryMode

# What the prompt asks the model to answer when the story does not say; scoring reads it as
# the empty prediction of the official SQuAD 2.0 script (aggregator/no_answer.py).
NO_ANSWER = "unknown"
SYSTEM_PROMPT = (
    "Answer each question about the story below with a short phrase, taken from the story "
    f"where possible. If the story does not say, answer {NO_ANSWER}.\n\n"
    "{story}"
)
MISSING_ANSWER = NO_ANSWER  # stands in for an earlier turn that failed, in `model` mode


def build_messages(
    story: str,
    questions: Sequence[tuple[int, str, Sequence[str]]],
    turn: int,
    history: HistoryMode,
    own_answers: Mapping[int, str] | None = None,
) -> list[dict[str, str]]:
    """Messages asking `turn`; `questions` holds (turn, question, references) in turn order.

    A question without references has no answer in the story: its gold answer in the history
    is the prompt's NO_ANSWER, as the model was asked to say.
    """
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
            gold = references[0] if references else NO_ANSWER
            messages.append({"role": "assistant", "content": gold})
        elif history is HistoryMode.MODEL:
            answer = (own_answers or {}).get(number) or MISSING_ANSWER
            messages.append({"role": "assistant", "content": answer})
    if current is None:
        raise ValueError(f"turn {turn} is not among the story's questions")
    messages.append({"role": "user", "content": current})
    return messages
