"""Paired comparison of two models on the questions both answered, overall and per domain.

Differences are "other minus reference" in points (0-100 scale): the reference is the run's
first model (the base). Intervals and p-values come from a story-clustered bootstrap
(`aggregator.bootstrap`); EM is also tested with an exact McNemar test (binarized at 0.5).
Per-domain p-values are Holm-adjusted over the domains that make a claim (`compare_domains`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from evalfleet.aggregator.aggregate import OVERALL
from evalfleet.aggregator.bootstrap import (
    ClusteredMean,
    FloatArray,
    IntArray,
    clustered_mean,
    resample_counts,
)
from evalfleet.aggregator.holm import holm_adjust
from evalfleet.aggregator.mcnemar import EM_RIGHT, McNemarResult, mcnemar_from_em
from evalfleet.aggregator.scored import ScoredTurn
from evalfleet.aggregator.student_t import t_quantile

__all__ = [
    "ALPHA",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "FEW_STORIES",
    "FEW_STORIES_NOTE",
    "POWER",
    "GroupComparison",
    "MetricComparison",
    "Outcomes",
    "PairedComparison",
    "PairedQuestion",
    "TOO_FEW_STORIES",
    "compare_all",
    "compare_domains",
    "compare_group",
    "compare_models",
    "comparison_to_json",
    "mde_factor",
    "pair_turns",
]

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0  # fixed, so the same run always gets the same intervals
ALPHA = 0.05
POWER = 0.8
PERCENT = 100.0
# Below this a domain's interval rests on too few clusters to trust: it gets its estimate and
# interval but no p-value or significance claim (two stories once got p = 0.005).
FEW_STORIES = 5
TOO_FEW_STORIES = "too few stories"
FEW_STORIES_NOTE = (
    "A domain with fewer than 5 stories (too few stories) gets its estimate and a rough "
    "interval, but no p-value and no significance claim."
)


@dataclass(frozen=True)
class PairedQuestion:
    """One question both models answered, with both scores (0..1)."""

    story_key: str
    source: str
    turn: int
    reference_em: float
    reference_f1: float
    other_em: float
    other_f1: float


@dataclass(frozen=True)
class MetricComparison:
    """One metric of both models and their difference, in points (0-100)."""

    metric: str  # "em" or "f1"
    reference: float
    other: float
    reference_ci: tuple[float, float] | None
    other_ci: tuple[float, float] | None
    difference: float  # other - reference
    ci: tuple[float, float] | None  # None with fewer than two stories
    se: float | None
    p_value: float | None  # unadjusted, as the test gives it
    mde: float | None  # smallest difference detected with 80% power at alpha 0.05
    # A domain's p after Holm over the domains that make a claim; None for the overall
    # comparison, for a domain not yet adjusted and for one with too few stories.
    p_holm: float | None = None
    claims: bool = True  # False: a domain with too few stories makes no significance claim

    @property
    def significant(self) -> bool:
        """Overall: the 95% interval excludes 0. A domain: its Holm-adjusted p < alpha."""
        if not self.claims:
            return False
        if self.p_holm is not None:
            return self.p_holm < ALPHA
        return self.ci is not None and (self.ci[0] > 0 or self.ci[1] < 0)

    @property
    def p_shown(self) -> float | None:
        """What a report shows: a domain's Holm-adjusted p; none without a claim."""
        if not self.claims:
            return None
        return self.p_value if self.p_holm is None else self.p_holm


@dataclass(frozen=True)
class Outcomes:
    """Questions where the other model's F1 is higher, equal, lower."""

    wins: int
    ties: int
    losses: int


@dataclass(frozen=True)
class GroupComparison:
    """The comparison on one group of questions: a source domain, or all of them."""

    domain: str
    questions: int
    stories: int
    em: MetricComparison
    f1: MetricComparison
    mcnemar: McNemarResult
    f1_outcomes: Outcomes
    too_few_stories: bool = False  # only ever set on a domain
    mcnemar_p_holm: float | None = None  # as MetricComparison.p_holm

    @property
    def mcnemar_p_shown(self) -> float | None:
        if self.too_few_stories:
            return None
        return self.mcnemar.p_value if self.mcnemar_p_holm is None else self.mcnemar_p_holm


@dataclass(frozen=True)
class PairedComparison:
    """Another model against the reference, overall and per source domain."""

    reference: str
    other: str
    left_out: int  # questions of the run not answered by both models
    resamples: int
    seed: int
    overall: GroupComparison | None  # None when no question was answered by both
    domains: tuple[GroupComparison, ...]
    holm_domains: int = 0  # domains in the Holm family: those with enough stories


def mde_factor(df: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """(t_{1-alpha/2} + t_{power}) with the interval's degrees of freedom: MDE = factor x SE.

    With many stories this is the textbook z_0.975 + z_0.8 = 2.80; with few it is larger,
    as the t interval is wider than a normal one.
    """
    return t_quantile(1 - alpha / 2, df) + t_quantile(power, df)


def pair_turns(
    turns: Sequence[ScoredTurn], reference: str, other: str
) -> tuple[list[PairedQuestion], int]:
    """Questions both models answered (matched on story key and turn), and how many were not."""
    by_key: dict[tuple[str, int], dict[str, ScoredTurn]] = defaultdict(dict)
    for t in turns:
        if t.label in (reference, other):
            by_key[(t.story_key, t.turn)][t.label] = t
    paired: list[PairedQuestion] = []
    for (story_key, turn), pair in by_key.items():
        ref, oth = pair.get(reference), pair.get(other)
        if ref is None or oth is None or ref.answer is None or oth.answer is None:
            continue
        paired.append(
            PairedQuestion(
                story_key=story_key,
                source=ref.source,
                turn=turn,
                reference_em=ref.em or 0.0,
                reference_f1=ref.f1 or 0.0,
                other_em=oth.em or 0.0,
                other_f1=oth.f1 or 0.0,
            )
        )
    return paired, len(by_key) - len(paired)


def compare_group(
    questions: Sequence[PairedQuestion], domain: str, rng: np.random.Generator, resamples: int
) -> GroupComparison:
    """Both metrics on one group; all bootstrap statistics share the same story resamples."""
    story_index: dict[str, int] = {}
    clusters = np.array(
        [story_index.setdefault(q.story_key, len(story_index)) for q in questions], dtype=np.int64
    )
    # As floats once: each of the six bootstrap means would cast the (resamples x stories)
    # integer matrix again (the same values, the same products).
    counts = resample_counts(rng, len(story_index), resamples).astype(np.float64)
    ref_em = np.array([q.reference_em for q in questions])
    oth_em = np.array([q.other_em for q in questions])
    ref_f1 = np.array([q.reference_f1 for q in questions])
    oth_f1 = np.array([q.other_f1 for q in questions])
    return GroupComparison(
        domain=domain,
        questions=len(questions),
        stories=len(story_index),
        em=_metric("em", ref_em, oth_em, clusters, counts),
        f1=_metric("f1", ref_f1, oth_f1, clusters, counts),
        mcnemar=mcnemar_from_em(ref_em.tolist(), oth_em.tolist()),
        f1_outcomes=Outcomes(
            wins=int((oth_f1 > ref_f1).sum()),
            ties=int((oth_f1 == ref_f1).sum()),
            losses=int((oth_f1 < ref_f1).sum()),
        ),
    )


def _metric(
    name: str, ref: FloatArray, oth: FloatArray, clusters: IntArray, counts: FloatArray
) -> MetricComparison:
    ref_mean = clustered_mean(ref, clusters, counts)
    oth_mean = clustered_mean(oth, clusters, counts)
    diff = clustered_mean(oth - ref, clusters, counts)
    return MetricComparison(
        metric=name,
        reference=ref_mean.estimate * PERCENT,
        other=oth_mean.estimate * PERCENT,
        reference_ci=_ci(ref_mean, 0.0),
        other_ci=_ci(oth_mean, 0.0),
        difference=diff.estimate * PERCENT,
        ci=_ci(diff, -PERCENT),
        se=None if diff.se is None else diff.se * PERCENT,
        p_value=diff.p_value,
        mde=None if diff.se is None else mde_factor(diff.df) * diff.se * PERCENT,
    )


def _ci(mean: ClusteredMean, lowest: float) -> tuple[float, float] | None:
    """In points, cut to what a score can be (lowest..100): with two or three stories a t
    interval easily reaches past it."""
    if mean.ci_low is None or mean.ci_high is None:
        return None
    return (max(lowest, mean.ci_low * PERCENT), min(PERCENT, mean.ci_high * PERCENT))


def compare_models(
    turns: Sequence[ScoredTurn],
    reference: str,
    other: str,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> PairedComparison:
    """`other` against `reference`, overall and per source domain, seeded and reproducible."""
    questions, left_out = pair_turns(turns, reference, other)
    rng = np.random.default_rng(seed)
    overall = compare_group(questions, OVERALL, rng, resamples) if questions else None
    domains, family = compare_domains(questions, rng, resamples)
    return PairedComparison(
        reference, other, left_out, resamples, seed, overall, domains, holm_domains=family
    )


def compare_domains(
    questions: Sequence[PairedQuestion], rng: np.random.Generator, resamples: int
) -> tuple[tuple[GroupComparison, ...], int]:
    """Every source domain (sorted) with Holm-adjusted p-values, and the family size: the
    domains with at least FEW_STORIES stories. Each metric (F1, EM, McNemar) is its own family.
    """
    by_domain: dict[str, list[PairedQuestion]] = defaultdict(list)
    for q in questions:
        by_domain[q.source].append(q)
    groups = [compare_group(by_domain[d], d, rng, resamples) for d in sorted(by_domain)]
    family = [g for g in groups if g.stories >= FEW_STORIES]
    f1 = holm_adjust([_p(g.f1) for g in family])
    em = holm_adjust([_p(g.em) for g in family])
    mcnemar = holm_adjust([g.mcnemar.p_value for g in family])
    adjusted = {g.domain: ps for g, *ps in zip(family, f1, em, mcnemar, strict=True)}
    return tuple(_claim(g, adjusted.get(g.domain)) for g in groups), len(family)


def _p(metric: MetricComparison) -> float:
    # Five or more stories always give a p-value (two suffice): the guard is for the reader.
    assert metric.p_value is not None
    return metric.p_value


def _claim(group: GroupComparison, p_holm: list[float] | None) -> GroupComparison:
    """The domain with its adjusted (F1, EM, McNemar) p-values, or marked too few stories."""
    if p_holm is None:
        return replace(
            group, f1=replace(group.f1, claims=False), em=replace(group.em, claims=False),
            too_few_stories=True,
        )  # fmt: skip
    return replace(
        group, f1=replace(group.f1, p_holm=p_holm[0]), em=replace(group.em, p_holm=p_holm[1]),
        mcnemar_p_holm=p_holm[2],
    )  # fmt: skip


def compare_all(
    turns: Sequence[ScoredTurn],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> list[PairedComparison]:
    """Every other model against the first one (the reference), in run-config order."""
    labels = list(dict.fromkeys(t.label for t in turns))
    return [
        compare_models(turns, labels[0], other, resamples=resamples, seed=seed)
        for other in labels[1:]
    ]


def comparison_to_json(comparison: PairedComparison) -> dict[str, Any]:
    """The machine form: every number, domains keyed by name."""
    return {
        "reference": comparison.reference,
        "other": comparison.other,
        "left_out": comparison.left_out,
        "method": {
            "interval": "t interval on the story-bootstrap standard error, stories - 1 df",
            "resamples": comparison.resamples,
            "seed": comparison.seed,
            "confidence": 1 - ALPHA,
            "mde_power": POWER,
            "mcnemar_em_right_at": EM_RIGHT,
            "domains_adjusted": "holm",
            "holm_domains": comparison.holm_domains,
            "few_stories_below": FEW_STORIES,
        },
        "overall": _group_json(comparison.overall) if comparison.overall else None,
        "domains": {g.domain: _group_json(g, domain=True) for g in comparison.domains},
    }


def _group_json(group: GroupComparison, domain: bool = False) -> dict[str, Any]:
    """A domain also carries its Holm-adjusted p-values and `too_few_stories`; there
    `significant` is Holm-based (and false with too few stories)."""
    document: dict[str, Any] = {
        "questions": group.questions,
        "stories": group.stories,
        "em": _metric_json(group.em),
        "f1": _metric_json(group.f1),
        "mcnemar": {
            "fixed": group.mcnemar.fixed,
            "broke": group.mcnemar.broke,
            "p_value": group.mcnemar.p_value,
        },
        "f1_outcomes": {
            "wins": group.f1_outcomes.wins,
            "ties": group.f1_outcomes.ties,
            "losses": group.f1_outcomes.losses,
        },
    }
    if domain:
        document["em"]["p_holm"] = group.em.p_holm
        document["f1"]["p_holm"] = group.f1.p_holm
        document["mcnemar"]["p_holm"] = group.mcnemar_p_holm
        document["too_few_stories"] = group.too_few_stories
    return document


def _metric_json(metric: MetricComparison) -> dict[str, Any]:
    return {
        "reference": metric.reference,
        "other": metric.other,
        "reference_ci": list(metric.reference_ci) if metric.reference_ci else None,
        "other_ci": list(metric.other_ci) if metric.other_ci else None,
        "difference": metric.difference,
        "ci": list(metric.ci) if metric.ci else None,
        "se": metric.se,
        "p_value": metric.p_value,
        "mde": metric.mde,
        "significant": metric.significant,
    }
