"""How many stories a comparison needs: the sample size of a paired, story-clustered test.

A pilot run gives the story-level spread of the paired difference (other minus reference,
per question). The difference is a mean over questions, but the questions of one story move
together, so its standard error shrinks with the number of stories S, not of questions:
SE = sd / sqrt(S), where sd is the spread of the per-story residuals
u_s = (T_s - D x n_s) / n_mean (T_s the story's summed difference, n_s its questions, D the
mean difference): the linearization of the ratio mean, whose variance the report's story
bootstrap estimates (aggregator/bootstrap.py). New stories are assumed to be like the pilot's,
with as many questions on average.

The planned size is the smallest S whose smallest detectable difference, with the report's
own rule (`paired.mde_factor`: t quantiles on S - 1 degrees of freedom), is at most the
wanted effect: then a true difference of that size is declared significant with the wanted
power by the report's two-sided t test at alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from evalfleet.aggregator.bootstrap import FloatArray, IntArray
from evalfleet.aggregator.paired import PERCENT, PairedQuestion, mde_factor

__all__ = [
    "MetricPlan",
    "StorySpread",
    "judge_spread",
    "paired_spreads",
    "plan_metric",
    "smallest_detectable",
    "stories_needed",
    "story_spread",
]


@dataclass(frozen=True)
class StorySpread:
    """A pilot's paired difference on one metric and its story-level spread, in points."""

    metric: str  # "f1", "em" or "judge"
    stories: int
    questions: int
    difference: float  # the pilot's mean difference
    sd: float  # story-level standard deviation: SE = sd / sqrt(stories)

    @property
    def se(self) -> float:
        return self.sd / math.sqrt(self.stories)


@dataclass(frozen=True)
class MetricPlan:
    """How many stories detect `mde` points with `power` at `alpha` (two-sided)."""

    spread: StorySpread
    mde: float
    alpha: float
    power: float
    stories: int
    pilot_mde: float  # the smallest detectable difference at the pilot's own size


def story_spread(metric: str, differences: FloatArray, clusters: IntArray) -> StorySpread:
    """The spread of per-story residuals; `clusters` holds each question's story, 0..S-1."""
    totals = np.bincount(clusters, weights=differences).astype(np.float64)
    sizes = np.bincount(clusters).astype(np.float64)
    stories = len(sizes)
    if stories < 2:
        raise ValueError("a story-level spread needs two stories or more")
    mean = float(totals.sum() / sizes.sum())
    residuals = (totals - mean * sizes) / sizes.mean()
    sd = math.sqrt(float((residuals**2).sum()) / (stories - 1))
    return StorySpread(metric, stories, int(sizes.sum()), mean * PERCENT, sd * PERCENT)


def _clusters(questions: Sequence[PairedQuestion]) -> IntArray:
    index: dict[str, int] = {}
    return np.array([index.setdefault(q.story_key, len(index)) for q in questions], dtype=np.int64)


def paired_spreads(questions: Sequence[PairedQuestion]) -> tuple[StorySpread, StorySpread]:
    """(F1, EM) spreads of a pilot's paired questions."""
    clusters = _clusters(questions)
    f1 = np.array([q.other_f1 - q.reference_f1 for q in questions], dtype=np.float64)
    em = np.array([q.other_em - q.reference_em for q in questions], dtype=np.float64)
    return story_spread("f1", f1, clusters), story_spread("em", em, clusters)


def judge_spread(questions: Sequence[PairedQuestion]) -> StorySpread | None:
    """The judge accuracy's spread on the questions graded for both models (the report's
    pairing); None when fewer than two stories have one (no judge, say)."""
    judged = [q for q in questions if q.judged]
    if len({q.story_key for q in judged}) < 2:
        return None
    differences = np.array(
        [(q.other_judge or 0.0) - (q.reference_judge or 0.0) for q in judged], dtype=np.float64
    )
    return story_spread("judge", differences, _clusters(judged))


def smallest_detectable(sd: float, stories: int, alpha: float, power: float) -> float:
    """The report's MDE with `stories` stories: (t_{1-alpha/2} + t_power) x sd / sqrt(S)."""
    return mde_factor(stories - 1, alpha, power) * sd / math.sqrt(stories)


def stories_needed(sd: float, mde: float, alpha: float, power: float) -> int:
    """The smallest S >= 2 with smallest_detectable(sd, S) <= mde.

    The normal-quantile size ((z_{1-alpha/2} + z_power) x sd / mde)^2 is a lower bound
    (t quantiles are larger); from there the t rule is a few steps away.
    """
    if mde <= 0:
        raise ValueError(f"the minimum detectable effect must be > 0, got {mde}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must be within (0, 1), got {alpha}, {power}")
    normal = NormalDist()
    z = normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)
    stories = max(2, math.ceil((z * sd / mde) ** 2))
    while smallest_detectable(sd, stories, alpha, power) > mde:
        stories += 1
    return stories


def plan_metric(spread: StorySpread, mde: float, alpha: float, power: float) -> MetricPlan:
    return MetricPlan(
        spread=spread,
        mde=mde,
        alpha=alpha,
        power=power,
        stories=stories_needed(spread.sd, mde, alpha, power),
        pilot_mde=smallest_detectable(spread.sd, spread.stories, alpha, power),
    )
