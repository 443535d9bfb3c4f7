"""Answers cut by `max_tokens` (finish_reason "length"): how many per model, and when to warn.

A cut answer is still the model's answer and is scored as it came (the prompt's budget is
part of the setup being evaluated), but a share above WARN_SHARE means the scores measure
the budget as much as the model: the report says so and names a larger `--max-tokens`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from evalfleet.aggregator.scored import ScoredTurn

__all__ = [
    "LENGTH",
    "WARN_SHARE",
    "Truncation",
    "truncation_by_label",
    "truncation_line",
    "truncation_warnings",
]

LENGTH = "length"  # the finish_reason of an answer cut at max_tokens (OpenAI, Together, vLLM)
WARN_SHARE = 0.02  # a few cut answers are normal; more than this moves the scores


@dataclass(frozen=True)
class Truncation:
    """One model's answers and how many of them were cut at `max_tokens`."""

    answered: int = 0
    truncated: int = 0
    max_tokens: int | None = None  # the run's; None when not known

    @property
    def share(self) -> float:
        """Cut answers over answered questions, rounded as shown; 0 with no answer yet."""
        return round(self.truncated / self.answered, 4) if self.answered else 0.0

    @property
    def too_many(self) -> bool:
        return self.answered > 0 and self.truncated / self.answered > WARN_SHARE

    def suggested_max_tokens(self) -> int | None:
        """Twice the budget: a cut answer's length says only that it wanted more than that."""
        return None if self.max_tokens is None else 2 * self.max_tokens

    def to_json(self) -> dict[str, Any]:
        return {"truncated": self.truncated, "truncated_share": self.share}


def truncation_by_label(
    turns: Iterable[ScoredTurn], max_tokens: int | None, labels: Iterable[str] = ()
) -> dict[str, Truncation]:
    """Answered and cut counts per label (every label of `labels` too, even with no turns)."""
    answered: dict[str, int] = dict.fromkeys(labels, 0)
    truncated: dict[str, int] = dict.fromkeys(labels, 0)
    for turn in turns:
        answered.setdefault(turn.label, 0)
        truncated.setdefault(turn.label, 0)
        if turn.answer is None:
            continue
        answered[turn.label] += 1
        truncated[turn.label] += turn.finish_reason == LENGTH
    return {label: Truncation(answered[label], truncated[label], max_tokens) for label in answered}


def truncation_line(truncations: Mapping[str, Truncation]) -> str:
    """One line for every report: each model's cut answers, count and share."""
    parts = [
        f"{label} {t.truncated} of {t.answered} ({100 * t.share:.1f}%)"
        for label, t in truncations.items()
    ]
    return 'answers cut by max_tokens (finish_reason "length"): ' + ", ".join(parts)


def truncation_warnings(truncations: Mapping[str, Truncation]) -> list[str]:
    """A warning per model with more than WARN_SHARE of its answers cut, naming the
    `--max-tokens` to try."""
    lines = []
    for label, t in truncations.items():
        if not t.too_many:
            continue
        budget = f"max_tokens {t.max_tokens}" if t.max_tokens is not None else "max_tokens"
        suggestion = t.suggested_max_tokens()
        advice = f"; try --max-tokens {suggestion}" if suggestion is not None else ""
        lines.append(
            f"warning: {label}: {t.truncated} of {t.answered} answers "
            f"({100 * t.share:.1f}%) were cut at {budget} and are scored as cut{advice}"
        )
    return lines
