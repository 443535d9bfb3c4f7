"""Why the scores differ: answer lengths, verbose answers, and the questions a model fixed or broke
(by F1, and with a judge by the judge's grade too).

Everything is computed on the questions every model answered (the scored questions), so
these numbers describe the same answers as the scores.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evalfleet.aggregator.mcnemar import EM_RIGHT
from evalfleet.aggregator.metrics import normalize_answer
from evalfleet.aggregator.scored import ScoredTurn

__all__ = [
    "CHANGES_SHOWN",
    "Bin",
    "ChangeLists",
    "ChangedQuestion",
    "Diagnostics",
    "ModelDiagnostics",
    "answer_words",
    "compute_diagnostics",
    "contains_gold",
    "diagnostics_to_json",
    "story_excerpt",
]

CHANGES_SHOWN = 25  # per list, largest change first
EXCERPT_CHARS = 320
# Answer length bins in words: (label, lowest, highest or None).
LENGTH_BINS: tuple[tuple[str, int, int | None], ...] = (
    ("0", 0, 0), ("1", 1, 1), ("2", 2, 2), ("3", 3, 3), ("4-5", 4, 5),
    ("6-10", 6, 10), ("11-20", 11, 20), ("21+", 21, None),
)  # fmt: skip
# Answers that say nothing about where in the story the evidence is.
_NOT_IN_STORY = frozenset({"", "yes", "no", "unknown"})
F1_BINS = ("0", "0-0.25", "0.25-0.5", "0.5-0.75", "0.75-1", "1")


@dataclass(frozen=True)
class Bin:
    label: str
    count: int


@dataclass(frozen=True)
class ModelDiagnostics:
    """How one model answers, on the scored questions."""

    label: str
    answers: int
    mean_words: float | None
    median_words: float | None
    length_bins: tuple[Bin, ...]
    f1_bins: tuple[Bin, ...]
    verbose_misses: int  # contain a gold answer (normalized, whole words) yet fail EM
    verbose_share: float | None  # verbose_misses / answers


@dataclass(frozen=True)
class ChangedQuestion:
    """A question whose F1 changed between the reference and the other model."""

    story_key: str
    source: str
    turn: int
    question: str
    references: tuple[str, ...]
    excerpt: str
    reference_answer: str
    other_answer: str
    reference_f1: float  # 0-100
    other_f1: float
    change: float  # other - reference, points (of the list's metric)
    # The judge's grades and reasons; None without a judge or a grade.
    reference_verdict: str | None = None
    other_verdict: str | None = None
    reference_reason: str | None = None
    other_reason: str | None = None


@dataclass(frozen=True)
class ChangeLists:
    """What the other model fixed (`metric` up) and broke (down) against the reference."""

    reference: str
    other: str
    fixed_total: int
    broke_total: int
    fixed: tuple[ChangedQuestion, ...]  # largest gain first
    broke: tuple[ChangedQuestion, ...]  # largest loss first
    metric: str = "f1"  # or "judge": wrong to correct and back, in story order


@dataclass(frozen=True)
class Diagnostics:
    scored_questions: int
    models: tuple[ModelDiagnostics, ...]
    changes: tuple[ChangeLists, ...]  # one per model after the reference
    judge_changes: tuple[ChangeLists, ...] = ()  # the same by the judge; none without one


def answer_words(text: str) -> int:
    """Length in white-space separated words, as a reader would count them."""
    return len(text.split())


def contains_gold(answer: str, references: Sequence[str]) -> bool:
    """Whether a normalized reference occurs in the normalized answer as whole words."""
    padded = f" {normalize_answer(answer)} "
    return any(
        (gold := normalize_answer(reference)) and f" {gold} " in padded for reference in references
    )


def story_excerpt(story: str, anchors: Sequence[str], width: int = EXCERPT_CHARS) -> str:
    """About `width` characters of the story around the first anchor found in it (the gold
    answer, else an answer), cut at word boundaries; the story's opening if none is found."""
    lowered = story.lower()
    centre = 0
    for anchor in anchors:
        needle = anchor.strip().strip(".!?").lower()
        if normalize_answer(needle) in _NOT_IN_STORY:
            continue
        found = re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", lowered)
        if found:
            centre = (found.start() + found.end()) // 2
            break
    start = max(0, centre - width // 2)
    end = min(len(story), start + width)
    start = max(0, end - width)
    if start > 0:
        space = story.find(" ", start)
        start = space + 1 if 0 <= space < centre else start
    if end < len(story):
        space = story.rfind(" ", start, end)
        end = space if space > centre else end
    text = " ".join(story[start:end].split())
    return ("… " if start > 0 else "") + text + (" …" if end < len(story) else "")


def _scored(turns: Sequence[ScoredTurn]) -> dict[str, dict[tuple[str, int], ScoredTurn]]:
    """Per label, the turns of the questions every model answered."""
    labels = list(dict.fromkeys(t.label for t in turns))
    by_label: dict[str, dict[tuple[str, int], ScoredTurn]] = defaultdict(dict)
    for t in turns:
        if t.answer is not None:
            by_label[t.label][(t.story_key, t.turn)] = t
    # As in the scores: a model that answered nothing (an unknown model, say) is not allowed
    # to empty the comparison of the others.
    answering = [set(by_label[label]) for label in labels if by_label[label]]
    common = set.intersection(*answering) if answering else set()
    return {label: {k: t for k, t in by_label[label].items() if k in common} for label in labels}


def _length_bins(lengths: Sequence[int]) -> tuple[Bin, ...]:
    return tuple(
        Bin(label, sum(low <= n and (high is None or n <= high) for n in lengths))
        for label, low, high in LENGTH_BINS
    )


def _f1_bin(f1: float) -> str:
    if f1 <= 0.0:
        return F1_BINS[0]
    if f1 >= 1.0:
        return F1_BINS[-1]
    return F1_BINS[1 + min(3, int(f1 * 4))]


def _model_diagnostics(label: str, turns: Sequence[ScoredTurn]) -> ModelDiagnostics:
    lengths = [answer_words(t.answer or "") for t in turns]
    f1_counts = dict.fromkeys(F1_BINS, 0)
    for t in turns:
        f1_counts[_f1_bin(t.f1 or 0.0)] += 1
    misses = sum(
        (t.em or 0.0) < EM_RIGHT and contains_gold(t.answer or "", t.references) for t in turns
    )
    return ModelDiagnostics(
        label=label,
        answers=len(turns),
        mean_words=statistics.fmean(lengths) if lengths else None,
        median_words=float(statistics.median(lengths)) if lengths else None,
        length_bins=_length_bins(lengths),
        f1_bins=tuple(Bin(name, count) for name, count in f1_counts.items()),
        verbose_misses=misses,
        verbose_share=misses / len(turns) if turns else None,
    )


def _value(turn: ScoredTurn, metric: str) -> float | None:
    value: float | None = getattr(turn, metric)
    return value


def _changed(ref: ScoredTurn, other: ScoredTurn, story: str, metric: str) -> ChangedQuestion:
    reference_f1, other_f1 = (ref.f1 or 0.0) * 100, (other.f1 or 0.0) * 100
    return ChangedQuestion(
        story_key=ref.story_key,
        source=ref.source,
        turn=ref.turn,
        question=ref.question,
        references=ref.references,
        excerpt=story_excerpt(story, [*ref.references, other.answer or "", ref.answer or ""]),
        reference_answer=ref.answer or "",
        other_answer=other.answer or "",
        reference_f1=reference_f1,
        other_f1=other_f1,
        change=(_value(other, metric) or 0.0) * 100 - (_value(ref, metric) or 0.0) * 100,
        reference_verdict=ref.verdict,
        other_verdict=other.verdict,
        reference_reason=ref.judge_reason,
        other_reason=other.judge_reason,
    )


def _change_lists(
    reference: str,
    other: str,
    scored: Mapping[str, Mapping[tuple[str, int], ScoredTurn]],
    stories: Mapping[str, str],
    shown: int,
    metric: str = "f1",
) -> ChangeLists:
    # Sorted on the change alone, then only the shown questions get their excerpt: a regex
    # search in the story per changed question was most of a large run's report. A question
    # without a value (not graded by the judge) changes nothing.
    changes = [
        (b * 100 - a * 100, key)
        for key, ref in scored[reference].items()
        if key in scored[other]
        and (a := _value(ref, metric)) is not None
        and (b := _value(scored[other][key], metric)) is not None
        and a != b
    ]
    fixed = sorted((c for c in changes if c[0] > 0), key=lambda c: -c[0])
    broke = sorted((c for c in changes if c[0] < 0), key=lambda c: c[0])

    def shown_of(chosen: list[tuple[float, tuple[str, int]]]) -> tuple[ChangedQuestion, ...]:
        return tuple(
            _changed(scored[reference][key], scored[other][key], stories.get(key[0], ""), metric)
            for _, key in chosen[:shown]
        )

    return ChangeLists(
        reference, other, len(fixed), len(broke), shown_of(fixed), shown_of(broke), metric
    )


def compute_diagnostics(
    turns: Sequence[ScoredTurn], stories: Mapping[str, str], shown: int = CHANGES_SHOWN
) -> Diagnostics:
    """`stories` maps a story key to its text (for the excerpts)."""
    scored = _scored(turns)
    labels = list(scored)
    return Diagnostics(
        scored_questions=max((len(by_key) for by_key in scored.values()), default=0),
        models=tuple(_model_diagnostics(label, list(scored[label].values())) for label in labels),
        changes=tuple(
            _change_lists(labels[0], other, scored, stories, shown) for other in labels[1:]
        ),
        judge_changes=tuple(
            _change_lists(labels[0], other, scored, stories, shown, "judge") for other in labels[1:]
        )
        if any(t.judge is not None for t in turns)
        else (),
    )


def diagnostics_to_json(diagnostics: Diagnostics) -> dict[str, Any]:
    document: dict[str, Any] = {
        "scored_questions": diagnostics.scored_questions,
        "models": {
            m.label: {
                "answers": m.answers,
                "mean_words": m.mean_words,
                "median_words": m.median_words,
                "length_bins": {b.label: b.count for b in m.length_bins},
                "f1_bins": {b.label: b.count for b in m.f1_bins},
                "verbose_misses": m.verbose_misses,
                "verbose_share": m.verbose_share,
            }
            for m in diagnostics.models
        },
        "changes": _changes_json(diagnostics.changes),
    }
    if diagnostics.judge_changes:  # only with a judge: a run without one keeps its document
        document["judge_changes"] = _changes_json(diagnostics.judge_changes)
    return document


def _changes_json(lists: Sequence[ChangeLists]) -> dict[str, Any]:
    return {
        c.other: {
            "reference": c.reference,
            "fixed_total": c.fixed_total,
            "broke_total": c.broke_total,
            "fixed": [_changed_json(q) for q in c.fixed],
            "broke": [_changed_json(q) for q in c.broke],
        }
        for c in lists
    }


def _changed_json(q: ChangedQuestion) -> dict[str, Any]:
    document: dict[str, Any] = {
        "story": q.story_key,
        "source": q.source,
        "turn": q.turn,
        "question": q.question,
        "references": list(q.references),
        "excerpt": q.excerpt,
        "reference_answer": q.reference_answer,
        "other_answer": q.other_answer,
        "reference_f1": q.reference_f1,
        "other_f1": q.other_f1,
        "change": q.change,
    }
    if q.reference_verdict is not None or q.other_verdict is not None:
        document |= {
            "reference_verdict": q.reference_verdict, "other_verdict": q.other_verdict,
            "reference_reason": q.reference_reason, "other_reason": q.other_reason,
        }  # fmt: skip
    return document
