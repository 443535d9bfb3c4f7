"""Repeated samples (--samples K): one mean per (model, question), and the share of the
answers' variance that is sampling noise (docs/samples.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from evalfleet.aggregator.scored import ScoredTurn

__all__ = [
    "SCORE_FIELDS",
    "SamplingNoise",
    "noise_lines",
    "noise_to_json",
    "per_question_means",
    "sampling_noise",
]

# Every numeric per-answer score of a ScoredTurn: each is averaged over a question's samples.
SCORE_FIELDS = ("em", "f1", "judge")
# The scores whose variance is split into sampling noise and the questions' own differences.
NOISE_FIELDS = ("f1", "em")

QuestionKey = tuple[str, int, int]  # (label, story id, turn)


def _by_question(turns: Iterable[ScoredTurn]) -> dict[QuestionKey, list[ScoredTurn]]:
    groups: dict[QuestionKey, list[ScoredTurn]] = {}
    for t in turns:
        groups.setdefault((t.label, t.story_id, t.turn), []).append(t)
    return groups


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _collapse(samples: list[ScoredTurn]) -> ScoredTurn:
    """One question's samples as one turn. Answered when any sample answered: its scores are
    the means over the answered samples (a sample that failed is left out, never scored 0,
    docs/architecture.md D6), its text and tokens those of the first answered sample. Else
    the first sample that failed for good (with its error), or the first (still open)."""
    answered = [t for t in samples if t.answer is not None]
    if not answered:
        return next((t for t in samples if t.error is not None), samples[0])
    means: dict[str, Any] = {}
    for name in SCORE_FIELDS:
        values = [v for v in (getattr(t, name) for t in answered) if v is not None]
        means[name] = _mean(values) if values else None
    return dataclasses.replace(answered[0], **means)


def per_question_means(turns: Sequence[ScoredTurn]) -> list[ScoredTurn]:
    """One turn per (model, question), in the order of the first sample of each: what every
    score and paired statistic is computed on. A run asked once (every sample 0) is returned
    as it is; so is a list already collapsed."""
    if not any(t.sample for t in turns):
        return list(turns)
    return [_collapse(samples) for samples in _by_question(turns).values()]


@dataclass(frozen=True)
class SamplingNoise:
    """One model's share of the per-answer variance that lies between a question's samples
    (0: the samples always agree; 1: the questions do not differ beyond sampling), over the
    questions with at least two answered samples; None when the answers do not vary."""

    label: str
    samples: int  # most samples of a question
    questions: int  # questions with two or more answered samples
    f1_share: float | None
    em_share: float | None


def _share(groups: Sequence[Sequence[float]]) -> float | None:
    """Within-question sum of squares over the total sum of squares: the answer-weighted mean
    within-question variance over the total variance of the answers."""
    values = [v for group in groups for v in group]
    grand = _mean(values)
    total = sum((v - grand) ** 2 for v in values)
    within = sum((v - _mean(group)) ** 2 for group in groups for v in group)
    return within / total if total > 1e-12 else None


def sampling_noise(turns: Sequence[ScoredTurn]) -> tuple[SamplingNoise, ...]:
    """Per model, in the turns' order; empty when the run asked each question once."""
    if not any(t.sample for t in turns):
        return ()
    scored: dict[str, dict[str, list[list[float]]]] = {}
    most: dict[str, int] = {}
    for (label, _, _), samples in _by_question(turns).items():
        most[label] = max(most.get(label, 0), len(samples))
        per_field = scored.setdefault(label, {name: [] for name in NOISE_FIELDS})
        for name in NOISE_FIELDS:
            values = [v for v in (getattr(t, name) for t in samples) if v is not None]
            if len(values) >= 2:
                per_field[name].append(values)
    return tuple(
        SamplingNoise(
            label=label,
            samples=most[label],
            questions=len(fields["f1"]),
            f1_share=_share(fields["f1"]) if fields["f1"] else None,
            em_share=_share(fields["em"]) if fields["em"] else None,
        )
        for label, fields in scored.items()
    )


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f}%"


def noise_lines(noise: Sequence[SamplingNoise]) -> list[str]:
    """What every report format says about sampling noise; nothing when asked once."""
    if not noise:
        return []
    head = (
        f"Sampling noise ({max(n.samples for n in noise)} samples per question, scored as "
        "their mean): the share of the answers' variance between a question's samples"
    )
    return [head] + [
        f"{n.label}: F1 {_percent(n.f1_share)}, EM {_percent(n.em_share)} "
        f"(over {n.questions} questions)"
        for n in noise
    ]


def noise_to_json(noise: Sequence[SamplingNoise]) -> dict[str, Any]:
    """By label; shares 0-1."""
    return {
        n.label: {
            "samples": n.samples,
            "questions": n.questions,
            "f1_share": n.f1_share,
            "em_share": n.em_share,
        }
        for n in noise
    }
