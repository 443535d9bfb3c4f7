"""The judge metric's sections of the HTML report: its paired table per comparison and its
agreement with EM and F1, with examples. Every cell is escaped user text or a number."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from evalfleet.aggregator import judge_render as jr
from evalfleet.aggregator.summary_types import Summary

__all__ = ["graded_html", "judge_agreement_html", "judge_comparison_html", "judge_line_html"]


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _note(text: str | None) -> str:
    return "" if text is None else f"<p class='note'>{_e(text)}</p>"


def _table(table_id: str, columns: Sequence[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f"<div class='wide'><table id='{_e(table_id)}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def graded_html(verdict: str | None, reason: str | None) -> str:
    """The judge's grade of one answer of a fixed/broke list; nothing without one."""
    if verdict is None:
        return ""
    return (
        f'<div class="gold"><span class="badge">judge: {_e(verdict)}</span> '
        f"{_e(reason or '')}</div>"
    )


def judge_line_html(summary: Summary) -> str:
    return _note(jr.judge_line(summary))


def judge_comparison_html(summary: Summary, index: int) -> str:
    """The judge's paired table of the index-th comparison (from 1); empty without a judge."""
    comparison = summary.comparisons[index - 1]
    rows = jr.judge_comparison_rows(comparison)
    if not rows:
        return ""
    return (
        f"<h3>{_e(jr.judge_title(comparison))}</h3>"
        + _table(f"judge-{index}", jr.JUDGE_COLUMNS, rows)
        + _note(jr.judge_holm_note(comparison))
    )


def judge_agreement_html(summary: Summary) -> str:
    """Per model, the judge against EM and F1, then examples of EM-wrong answers it passed."""
    rows = jr.agreement_rows(summary)
    if not rows or summary.judge is None:
        return ""
    examples = [
        f"<li class='text'>{_e(line)}</li>"
        for m in summary.judge.agreement
        for line, _ in jr.example_lines(m)
    ]
    return (
        f"<h2>{_e(jr.AGREEMENT_TITLE)}</h2>"
        + _table("judge-agreement", jr.AGREEMENT_COLUMNS, rows)
        + _note(jr.AGREEMENT_NOTE)
        + (
            "<h3>Answers EM calls wrong and the judge correct (lowest F1 first)</h3>"
            f"<ul id='judge-examples'>{''.join(examples)}</ul>"
            if examples
            else ""
        )
    )
