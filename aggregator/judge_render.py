"""The judge metric's lines and table cells, shared by every report format (table, Markdown,
HTML); the JSON form lives with the values. Nothing here is shown for a run without a judge."""

from __future__ import annotations

import textwrap

from evalfleet.aggregator.agreement import F1_AGREES_AT, AgreementExample, ModelAgreement
from evalfleet.aggregator.mcnemar import EM_RIGHT
from evalfleet.aggregator.no_answer import NO_GOLD
from evalfleet.aggregator.paired import (
    FEW_STORIES,
    TOO_FEW_STORIES,
    GroupComparison,
    JudgeComparison,
    PairedComparison,
)
from evalfleet.aggregator.summary_types import Summary

__all__ = [
    "AGREEMENT_COLUMNS",
    "AGREEMENT_NOTE",
    "AGREEMENT_TITLE",
    "JUDGE_COLUMNS",
    "agreement_rows",
    "example_lines",
    "judge_comparison_rows",
    "judge_holm_note",
    "judge_line",
    "judge_title",
]

JUDGE_COLUMNS = (
    "domain", "questions (stories)", "judge accuracy", "Δjudge [95% CI]", "p", "McNemar p",
)  # fmt: skip
AGREEMENT_TITLE = "The judge against EM and F1 (to audit the judge)"
AGREEMENT_COLUMNS = (
    "label", "graded", "correct / incorrect / not attempted", "EM wrong, judged correct",
    "EM right, judged incorrect", f"agrees with F1 >= {F1_AGREES_AT}", "could not grade",
)  # fmt: skip
AGREEMENT_NOTE = (
    f"On every answer the judge graded. EM right means EM >= {EM_RIGHT}; an answer with EM = 1 "
    "is graded correct by rule, with no judge call (the cascade), so an EM-right answer judged "
    "incorrect can only be one with a fractional EM. Answers the judge could not grade are "
    "left out of the judge's scores, never counted wrong."
)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _share(count: int, share: float | None) -> str:
    return f"{count} ({_fmt(None if share is None else 100 * share)}%)"


def judge_line(summary: Summary) -> str | None:
    """Who the judge was and what its calls cost; None without a judge."""
    judge = summary.judge
    if judge is None:
        return None
    line = f"Judge: {judge.model}, grading each answer correct, incorrect or not attempted"
    return line + (f"; {judge.usage.line}" if judge.usage else "")


def judge_title(comparison: PairedComparison) -> str:
    return f"{comparison.other} against {comparison.reference} by the judge (paired, per domain)"


def _groups(comparison: PairedComparison) -> list[tuple[GroupComparison, JudgeComparison]]:
    groups = [*comparison.domains, *([comparison.overall] if comparison.overall else [])]
    return [(g, g.judge) for g in groups if g.judge is not None]


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def judge_comparison_rows(comparison: PairedComparison) -> list[list[str]]:
    """Per domain then overall, the judge's paired statistics; none when nothing was graded
    for both models."""
    rows = []
    for group, j in _groups(comparison):
        a = j.accuracy
        ci = "-" if a.ci is None else f"[{a.ci[0]:+.1f}, {a.ci[1]:+.1f}]"
        rows.append(
            [
                group.domain, f"{j.questions} ({j.stories})",
                f"{_fmt(a.reference)} → {_fmt(a.other)}", f"{a.difference:+.1f} {ci}",
                TOO_FEW_STORIES if j.too_few_stories else _p(a.p_shown), _p(j.mcnemar_p_shown),
            ]
        )  # fmt: skip
    return rows


def judge_holm_note(comparison: PairedComparison) -> str | None:
    """The correction of the judge's per-domain p-values (its own family: the domains with
    enough stories graded for both models)."""
    if not comparison.domains or not _groups(comparison):
        return None
    n = comparison.judge_holm_domains
    if n == 0:
        return f"No domain has {FEW_STORIES} graded stories or more: no judge p-value per domain."
    return (
        f"Judge p-values per domain Holm-adjusted over {n} domain{'s' if n > 1 else ''} (with "
        f"{FEW_STORIES} graded stories or more); questions graded for both models only."
    )


def agreement_rows(summary: Summary) -> list[list[str]]:
    """Per model, how the judge's grades agree with EM and F1."""
    if summary.judge is None:
        return []
    return [_agreement_cells(m) for m in summary.judge.agreement]


def _agreement_cells(m: ModelAgreement) -> list[str]:
    by_rule = f" ({m.by_rule} graded by rule)" if m.by_rule else ""
    return [
        m.label, f"{m.graded} of {m.answers}", f"{m.correct} / {m.incorrect} / {m.not_attempted}",
        _share(m.em_wrong_judged_correct, m.em_wrong_correct_share),
        _share(m.em_right_judged_incorrect, m.em_right_incorrect_share) + by_rule,
        _share(m.f1_agree, m.f1_agreement), str(m.failed + m.ungraded),
    ]  # fmt: skip


# An example's answer past this many characters is cut: a chat model's whole paragraph would
# bury the line; the export has every answer in full.
EXAMPLE_ANSWER_CHARS = 160


def example_lines(m: ModelAgreement) -> list[tuple[str, AgreementExample]]:
    """Each example of an EM-wrong answer judged correct as one plain line, with the example."""
    return [
        (
            f"{m.label}, story {e.story_key} turn {e.turn}: {e.question} → "
            f"{textwrap.shorten(e.answer, EXAMPLE_ANSWER_CHARS, placeholder=' …')} "
            f"(gold: {' / '.join(e.references) or NO_GOLD}; F1 {e.f1:.0f}); the judge: "
            f"{e.reason or 'no reason given'}",
            e,
        )
        for e in m.examples
    ]
