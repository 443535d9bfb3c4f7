"""Holm's step-down adjustment: p-values of a family of tests, corrected for testing several.

Each source domain is tested on its own; at alpha = 0.05 per domain, a model that changes
nothing looks "significant" in some domain far more often than 5% of the time. Holm keeps the
family-wise error (any false claim among the domains) at alpha, without assuming the tests
independent, and is never less powerful than Bonferroni.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["holm_adjust"]


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Adjusted p-values in the input's order: the i-th smallest of m becomes
    max over j <= i of min(1, (m - j + 1) x p_(j)); reject where adjusted < alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
