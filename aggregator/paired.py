"""Paired comparison of two models on the questions both answered, overall and per domain.

Differences are "other minus reference" in points (0-100 scale): the reference is the run's
first model (the base). Intervals and p-values come from a story-clustered bootstrap
(`aggregator.bootstrap`); EM is also tested with an exact McNemar test (binarized at 0.5).
Per-domain p-values are Holm-adjusted over the domains that make a claim (`compare_domains`).
With a judge, its accuracy gets the same statistics on the questions graded for both models
(`JudgeComparison`; a judge grade is right/wrong, so its McNemar test needs no binarizing).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

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
from evalfleet.aggregator.mcnemar import McNemarResult, mcnemar_from_em
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
    "JudgeComparison",
    "MetricComparison",
    "Outcomes",
    "PairedComparison",
    "PairedQuestion",
    "TOO_FEW_STORIES",
    "compare_all",
    "compare_domains",
    "compare_group",
    "compare_models",
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
    # The judge's grades (1.0 correct, 0.0 not); None: not graded (no judge, or it failed).
    reference_judge: float | None = None
    other_judge: float | None = None

    @property
    def judged(self) -> bool:
        """Graded for both models: the only questions the judge metric pairs."""
        return self.reference_judge is not None and self.other_judge is not None


@dataclass(frozen=True)
class MetricComparison:
    """One metric of both models and their difference, in points (0-100)."""

    metric: str  # "em", "f1" or "judge"
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


def _p_shown(p_value: float, p_holm: float | None, too_few_stories: bool) -> float | None:
    """A McNemar p as a report shows it: Holm-adjusted for a domain, none without a claim."""
    if too_few_stories:
        return None
    return p_value if p_holm is None else p_holm


@dataclass(frozen=True)
class JudgeComparison:
    """The judge's accuracy on the questions of a group graded for both models (docs/
    architecture.md, "The judge"), with its McNemar test on correct / not correct."""

    questions: int
    stories: int
    accuracy: MetricComparison  # metric "judge"
    mcnemar: McNemarResult
    too_few_stories: bool = False  # only ever set on a domain
    mcnemar_p_holm: float | None = None

    @property
    def mcnemar_p_shown(self) -> float | None:
        return _p_shown(self.mcnemar.p_value, self.mcnemar_p_holm, self.too_few_stories)


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
    judge: JudgeComparison | None = None  # None: no question of the group graded for both

    @property
    def mcnemar_p_shown(self) -> float | None:
        return _p_shown(self.mcnemar.p_value, self.mcnemar_p_holm, self.too_few_stories)


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
    judge_holm_domains: int = 0  # the same for the judge metric (its own graded stories)


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
                reference_judge=ref.judge,
                other_judge=oth.judge,
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
        judge=_judge(questions, clusters, counts, rng, resamples),
    )


def _judge(
    questions: Sequence[PairedQuestion], clusters: IntArray, counts: FloatArray,
    rng: np.random.Generator, resamples: int,
) -> JudgeComparison | None:  # fmt: skip
    """The judge metric on the questions graded for both models: on the group's resamples
    while every story keeps one (as usual), else on those of the stories that do (0 / 0)."""
    graded = np.array([q.judged for q in questions], dtype=bool)
    if not graded.any():
        return None
    kept = clusters[graded]
    stories = np.unique(kept)
    if len(stories) < counts.shape[1]:
        kept = np.searchsorted(stories, kept).astype(np.int64)
        counts = resample_counts(rng, len(stories), resamples).astype(np.float64)
    ref = np.array([q.reference_judge for q in questions if q.judged], dtype=np.float64)
    oth = np.array([q.other_judge for q in questions if q.judged], dtype=np.float64)
    return JudgeComparison(
        int(graded.sum()), len(stories), _metric("judge", ref, oth, kept, counts),
        mcnemar_from_em(ref.tolist(), oth.tolist()),
    )  # fmt: skip


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
    domains, family, judge_family = compare_domains(questions, rng, resamples)
    return PairedComparison(
        reference, other, left_out, resamples, seed, overall, domains, holm_domains=family,
        judge_holm_domains=judge_family,
    )  # fmt: skip


def compare_domains(
    questions: Sequence[PairedQuestion], rng: np.random.Generator, resamples: int
) -> tuple[tuple[GroupComparison, ...], int, int]:
    """Every source domain (sorted) with Holm-adjusted p-values, and the family sizes: the
    domains with at least FEW_STORIES stories, then those with as many graded for the judge.
    Each metric (F1, EM, McNemar, judge, McNemar on the judge) is its own family."""
    by_domain: dict[str, list[PairedQuestion]] = defaultdict(list)
    for q in questions:
        by_domain[q.source].append(q)
    groups = [compare_group(by_domain[d], d, rng, resamples) for d in sorted(by_domain)]
    family = [g for g in groups if g.stories >= FEW_STORIES]
    f1 = holm_adjust([_p(g.f1) for g in family])
    em = holm_adjust([_p(g.em) for g in family])
    mcnemar = holm_adjust([g.mcnemar.p_value for g in family])
    adjusted = {g.domain: ps for g, *ps in zip(family, f1, em, mcnemar, strict=True)}
    judged = {
        g.domain: g.judge for g in groups if g.judge is not None and g.judge.stories >= FEW_STORIES
    }
    accuracy = holm_adjust([_p(j.accuracy) for j in judged.values()])
    judge_mcnemar = holm_adjust([j.mcnemar.p_value for j in judged.values()])
    judge_adjusted = {d: ps for d, *ps in zip(judged, accuracy, judge_mcnemar, strict=True)}
    claims = tuple(_claim(g, adjusted.get(g.domain), judge_adjusted.get(g.domain)) for g in groups)
    return claims, len(family), len(judged)


def _p(metric: MetricComparison) -> float:
    # Five or more stories always give a p-value (two suffice): the guard is for the reader.
    assert metric.p_value is not None
    return metric.p_value


def _claim(
    group: GroupComparison, p_holm: list[float] | None, judge_p_holm: list[float] | None
) -> GroupComparison:
    """The domain with its adjusted (F1, EM, McNemar) p-values, or marked too few stories;
    its judge comparison likewise with (accuracy, McNemar), on its own graded stories."""
    judge = group.judge
    if judge is not None:
        judge = (
            replace(judge, accuracy=replace(judge.accuracy, claims=False), too_few_stories=True)
            if judge_p_holm is None
            else replace(
                judge, accuracy=replace(judge.accuracy, p_holm=judge_p_holm[0]),
                mcnemar_p_holm=judge_p_holm[1],
            )
        )  # fmt: skip
    if p_holm is None:
        return replace(
            group, f1=replace(group.f1, claims=False), em=replace(group.em, claims=False),
            too_few_stories=True, judge=judge,
        )  # fmt: skip
    return replace(
        group, f1=replace(group.f1, p_holm=p_holm[0]), em=replace(group.em, p_holm=p_holm[1]),
        mcnemar_p_holm=p_holm[2], judge=judge,
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
