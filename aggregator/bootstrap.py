"""Story-clustered bootstrap of a mean over questions, with a few-cluster t interval.

The turns of one story are correlated (same passage, one conversation), so the unit of
resampling is the story: a resample draws S stories with replacement and takes the mean over
all their questions (a ratio of sums, as the reported scores are).

Why the interval is not the plain percentile one: with the 20-story CoQA sample, A/A
comparisons (`bench/calibration.py`) showed the 95% percentile interval excluding 0 in about
9% of cases instead of 5%. The bootstrap distribution estimates the spread with only S
clusters, and that estimate is itself noisy (most stories contribute no difference at all,
a few contribute everything), which a normal-shaped percentile interval ignores; its plug-in
variance is also biased low by (S - 1) / S. Hesterberg's expanded percentile interval still
gave 6-8%. What is calibrated (about 5%) is the t interval on the bootstrap standard error,
corrected by sqrt(S / (S - 1)), with S - 1 degrees of freedom: the same small-sample
correction as a cluster-robust (CR1) t test, which the bootstrap SE equals in expectation.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from evalfleet.aggregator.student_t import t_quantile, t_two_sided_p

__all__ = [
    "ClusteredMean",
    "all_resample_counts",
    "bootstrap_means",
    "clustered_mean",
    "resample_counts",
]

_ROUNDING = 1e-12
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ClusteredMean:
    """A mean over questions with its story-clustered uncertainty (same scale as the values)."""

    estimate: float
    se: float | None  # None with fewer than two stories: no spread can be estimated
    df: int  # stories - 1
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # two-sided, against a mean of 0


def resample_counts(rng: np.random.Generator, clusters: int, resamples: int) -> IntArray:
    """How often each of `clusters` stories is drawn in each resample: shape (resamples, S)."""
    draws = rng.integers(0, clusters, size=(resamples, clusters))
    offsets = clusters * np.arange(resamples, dtype=np.int64)[:, None]
    flat = np.bincount((draws + offsets).ravel(), minlength=resamples * clusters)
    return flat.reshape(resamples, clusters).astype(np.int64)


def all_resample_counts(clusters: int) -> IntArray:
    """Every one of the S^S equally likely ordered resamples: the exact bootstrap (small S)."""
    rows = [
        np.bincount(np.array(draw, dtype=np.int64), minlength=clusters)
        for draw in itertools.product(range(clusters), repeat=clusters)
    ]
    return np.array(rows, dtype=np.int64)


def bootstrap_means(
    totals: FloatArray, sizes: FloatArray, counts: IntArray | FloatArray
) -> FloatArray:
    """The question-weighted mean of each resample, from per-story totals and sizes."""
    return np.asarray((counts @ totals) / (counts @ sizes), dtype=np.float64)


def clustered_mean(
    values: FloatArray,
    clusters: IntArray,
    counts: IntArray | FloatArray,
    confidence: float = 0.95,
) -> ClusteredMean:
    """Mean of `values` (one per question) with a t interval on the story-bootstrap SE.

    `clusters` holds each question's story index in 0..S-1; `counts` the resamples over
    those S stories (`resample_counts`, or `all_resample_counts` for the exact bootstrap).
    """
    stories = counts.shape[1]
    totals = np.bincount(clusters, weights=values, minlength=stories).astype(np.float64)
    sizes = np.bincount(clusters, minlength=stories).astype(np.float64)
    estimate = float(values.mean())
    if stories < 2:
        return ClusteredMean(estimate, None, 0, None, None, None)
    spread = float(bootstrap_means(totals, sizes, counts).std())
    se = spread * math.sqrt(stories / (stories - 1))
    if se <= _ROUNDING * max(1.0, abs(estimate)):
        se = 0.0  # every resample gives the same mean: only rounding is left
    df = stories - 1
    half_width = t_quantile(0.5 + confidence / 2, df) * se
    if se > 0:
        p_value = t_two_sided_p(estimate / se, df)
    else:
        p_value = 1.0 if estimate == 0 else 0.0
    return ClusteredMean(estimate, se, df, estimate - half_width, estimate + half_width, p_value)
