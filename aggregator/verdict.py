"""The verdict: one line that says whether a model beats the reference, by how much, how sure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from evalfleet.aggregator.paired import ALPHA, POWER, MetricComparison, PairedComparison

__all__ = ["Verdict", "format_ci", "format_p", "verdict"]

VerdictKind = Literal["better", "worse", "unclear", "empty"]


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    headline: str  # "finetuned beats base"
    detail: str  # the numbers

    @property
    def line(self) -> str:
        return f"{self.headline}: {self.detail}"


def format_p(p: float | None) -> str:
    if p is None:
        return "p n/a"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def format_ci(ci: tuple[float, float] | None) -> str:
    return "no interval: one story" if ci is None else f"95% CI {ci[0]:+.1f} to {ci[1]:+.1f}"


def _difference(name: str, metric: MetricComparison) -> str:
    return f"{name} {metric.difference:+.1f} ({format_ci(metric.ci)}, {format_p(metric.p_value)})"


def verdict(comparison: PairedComparison) -> Verdict:
    """Judged on F1 (the primary metric): significant when its 95% interval excludes 0; the
    judge's accuracy difference is stated beside it when the run has a judge."""
    other, reference, group = comparison.other, comparison.reference, comparison.overall
    if group is None:
        return Verdict(
            "empty", f"{other} vs {reference}", "no question was answered by both models"
        )
    f1, em = group.f1, group.em
    if f1.significant and f1.difference > 0:
        kind: VerdictKind = "better"
        headline = f"{other} beats {reference}"
    elif f1.significant:
        kind, headline = "worse", f"{other} is worse than {reference}"
    else:
        kind, headline = "unclear", f"no detectable difference between {other} and {reference}"
    detail = (
        f"{_difference('F1', f1)}, {_difference('EM', em)}; McNemar on EM (right = EM >= 0.5) "
        f"{format_p(group.mcnemar.p_value)}; {group.questions} questions in {group.stories} "
        f"stories"
    )
    judge = group.judge
    if judge is not None:  # beside F1, not instead: F1 stays the primary metric
        detail += (
            f"; {_difference('judge accuracy', judge.accuracy)}, McNemar on the judge "
            f"{format_p(judge.mcnemar.p_value)} on the {judge.questions} questions graded for both"
        )
    if f1.mde is not None and em.mde is not None:
        detail += (
            f"; smallest detectable difference {f1.mde:.1f} F1, {em.mde:.1f} EM points "
            f"({POWER:.0%} power, alpha {ALPHA})"
        )
    return Verdict(kind, headline, detail + ".")
