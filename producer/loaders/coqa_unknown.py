"""CoQA's "unknown": the answer CoQA gives to a question its story does not answer.

Both the hub schema (`answers.input_text` "unknown", `answer_start` -1) and the official JSON
(`input_text` and `span_text` "unknown", `span_start` -1) write it as the answer text. A question
whose every reference is "unknown" is stored without references: a question without an answer,
scored as SQuAD 2.0 scores one (aggregator/no_answer.py). When the official set's annotators
disagree (some "unknown", some an answer), every reference is kept and compared as text, as the
official CoQA script does.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalfleet.aggregator.metrics import normalize_answer

COQA_UNKNOWN = "unknown"


def coqa_references(answers: Sequence[str]) -> tuple[str, ...]:
    """A CoQA question's references: none when every answer is "unknown"."""
    if all(normalize_answer(answer) == COQA_UNKNOWN for answer in answers):
        return ()
    return tuple(answers)
