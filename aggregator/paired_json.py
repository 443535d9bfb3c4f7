"""A paired comparison's machine form (`status --json`, `report --format json`, `compare`):
every number, domains keyed by name; the judge metric's keys only when a judge graded."""

from __future__ import annotations

from typing import Any

from evalfleet.aggregator.mcnemar import EM_RIGHT, McNemarResult
from evalfleet.aggregator.paired import (
    ALPHA,
    FEW_STORIES,
    POWER,
    GroupComparison,
    JudgeComparison,
    MetricComparison,
    PairedComparison,
)

__all__ = ["comparison_to_json"]


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
            # Only with a judge: a run without one keeps its document as it was.
            **_judge_method(comparison),
        },
        "overall": _group_json(comparison.overall) if comparison.overall else None,
        "domains": {g.domain: _group_json(g, domain=True) for g in comparison.domains},
    }


def _judge_method(comparison: PairedComparison) -> dict[str, Any]:
    groups = [comparison.overall, *comparison.domains]
    if all(g is None or g.judge is None for g in groups):
        return {}
    return {"judge_holm_domains": comparison.judge_holm_domains}


def _mcnemar_json(result: McNemarResult) -> dict[str, Any]:
    return {"fixed": result.fixed, "broke": result.broke, "p_value": result.p_value}


def _judge_json(judge: JudgeComparison, domain: bool) -> dict[str, Any]:
    """The accuracy's figures (as em and f1 have them) on its own graded questions."""
    document: dict[str, Any] = {
        "questions": judge.questions,
        "stories": judge.stories,
        **_metric_json(judge.accuracy),
        "mcnemar": _mcnemar_json(judge.mcnemar),
    }
    if domain:
        document["p_holm"] = judge.accuracy.p_holm
        document["mcnemar"]["p_holm"] = judge.mcnemar_p_holm
        document["too_few_stories"] = judge.too_few_stories
    return document


def _group_json(group: GroupComparison, domain: bool = False) -> dict[str, Any]:
    """A domain also carries its Holm-adjusted p-values and `too_few_stories`; there
    `significant` is Holm-based (and false with too few stories)."""
    document: dict[str, Any] = {
        "questions": group.questions,
        "stories": group.stories,
        "em": _metric_json(group.em),
        "f1": _metric_json(group.f1),
        "mcnemar": _mcnemar_json(group.mcnemar),
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
    if group.judge is not None:
        document["judge"] = _judge_json(group.judge, domain)
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
