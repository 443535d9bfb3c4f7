"""Exact McNemar test on paired right/wrong outcomes (the binomial form, no scipy).

EM per question is fractional when a question has several references (leave-one-out
averages), so outcomes are binarized first: right means EM >= 0.5. The test treats
questions as independent; the story-clustered interval on the EM difference does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["EM_RIGHT", "McNemarResult", "mcnemar_exact", "mcnemar_from_em"]

EM_RIGHT = 0.5  # an EM at or above this counts as a right answer


@dataclass(frozen=True)
class McNemarResult:
    """Discordant pairs and the exact two-sided p-value."""

    fixed: int  # wrong for the reference, right for the other model
    broke: int  # right for the reference, wrong for the other model
    p_value: float


def mcnemar_exact(fixed: int, broke: int) -> McNemarResult:
    """Two-sided exact p: twice the smaller binomial tail of Bin(fixed + broke, 1/2), capped at 1.

    Under the null hypothesis each discordant pair goes either way with probability 1/2.
    """
    if fixed < 0 or broke < 0:
        raise ValueError(f"counts must be >= 0, got {fixed} and {broke}")
    n = fixed + broke
    if n == 0:
        return McNemarResult(fixed, broke, 1.0)
    # sum of C(n, k) for k <= min(fixed, broke), in exact integers: each binomial
    # coefficient from the previous one, C(n, k + 1) = C(n, k) (n - k) / (k + 1), which
    # stays fast for thousands of discordant questions (math.comb each time would not).
    tail, coefficient = 0, math.comb(n, 0)
    for k in range(min(fixed, broke) + 1):
        tail += coefficient
        coefficient = coefficient * (n - k) // (k + 1)
    return McNemarResult(fixed, broke, min(1.0, 2 * tail / 2**n))


def mcnemar_from_em(reference_em: Sequence[float], other_em: Sequence[float]) -> McNemarResult:
    """The test on paired EM scores, binarized at EM_RIGHT; also on the judge's grades
    (1 correct, 0 not), which binarizing leaves as they are."""
    if len(reference_em) != len(other_em):
        raise ValueError("paired EM sequences must have the same length")
    fixed = sum(r < EM_RIGHT <= o for r, o in zip(reference_em, other_em, strict=True))
    broke = sum(o < EM_RIGHT <= r for r, o in zip(reference_em, other_em, strict=True))
    return mcnemar_exact(fixed, broke)
