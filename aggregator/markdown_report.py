"""The full report as Markdown, with its plots as PNG files in a folder beside it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from evalfleet.aggregator.diagnostics import ChangedQuestion, ChangeLists, Diagnostics
from evalfleet.aggregator.judge_render import example_lines
from evalfleet.aggregator.mcnemar import EM_RIGHT
from evalfleet.aggregator.no_answer import NO_GOLD
from evalfleet.aggregator.plots import figure_png, report_plots
from evalfleet.aggregator.render import render_markdown
from evalfleet.aggregator.report_data import ReportData

__all__ = ["MarkdownReport", "markdown_report", "md_text"]

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


@dataclass(frozen=True)
class MarkdownReport:
    text: str
    images: dict[str, bytes]  # relative path (as linked from the text) -> PNG bytes


def md_text(text: str) -> str:
    """User text shown verbatim: no markup, no HTML, one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", escape(" ".join(text.split()), quote=False))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _diagnostics(diagnostics: Diagnostics) -> list[str]:
    lines = [
        "",
        "## How the models answer",
        "",
        f'On the {diagnostics.scored_questions} scored questions. "Hold gold, fail EM": the '
        f"answer contains a gold answer (normalized, whole words) yet its EM is below "
        f"{EM_RIGHT}: right, but too wordy.",
        "",
        "| label | answers | mean words | median words | hold gold, fail EM | share |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in diagnostics.models:
        share = None if m.verbose_share is None else 100 * m.verbose_share
        lines.append(
            f"| {md_text(m.label)} | {m.answers} | {_num(m.mean_words)} | "
            f"{_num(m.median_words)} | {m.verbose_misses} | {_num(share)}% |"
        )
    return lines


def _graded(verdict: str | None, reason: str | None) -> str:
    """The judge's grade after an answer; nothing without one."""
    if verdict is None:
        return ""
    return f"; judge: {md_text(verdict)}" + (f" ({md_text(reason)})" if reason else "")


def _change(q: ChangedQuestion, reference: str, other: str) -> list[str]:
    return [
        f"- **{md_text(q.question)}** ({md_text(q.source)}, story {md_text(q.story_key)}, "
        f"turn {q.turn}, ΔF1 {q.other_f1 - q.reference_f1:+.0f})",
        f"  - {md_text(reference)}: {md_text(q.reference_answer)} (F1 {q.reference_f1:.0f}"
        f"{_graded(q.reference_verdict, q.reference_reason)})",
        f"  - {md_text(other)}: {md_text(q.other_answer)} (F1 {q.other_f1:.0f}"
        f"{_graded(q.other_verdict, q.other_reason)})",
        f"  - gold: {' / '.join(md_text(r) for r in q.references) or NO_GOLD}",
        f"  - story: {md_text(q.excerpt)}",
    ]


def _changes(changes: ChangeLists) -> list[str]:
    ref, other = md_text(changes.reference), md_text(changes.other)
    by_judge = changes.metric == "judge"
    lines = [
        "",
        f"## What {other} fixed and broke against {ref}{' by the judge' if by_judge else ''}",
    ]
    for name, total, items in (
        ("Fixed", changes.fixed_total, changes.fixed),
        ("Broke", changes.broke_total, changes.broke),
    ):
        how = (
            f"judged {'incorrect → correct' if name == 'Fixed' else 'correct → incorrect'}; "
            "story order"
            if by_judge
            else f"F1 {'up' if name == 'Fixed' else 'down'}; largest change first"
        )
        lines += ["", f"### {name}: {total} questions ({how})", ""]
        lines += [line for q in items for line in _change(q, changes.reference, changes.other)]
        if not items:
            lines.append("None.")
    return lines


def _judge_examples(report: ReportData) -> list[str]:
    """A few answers EM calls wrong and the judge correct, per model, with its reasons."""
    judge = report.summary.judge
    examples = [e for m in judge.agreement for e in example_lines(m)] if judge else []
    if not examples:
        return []
    lines = ["", "## Answers EM calls wrong and the judge correct (lowest F1 first)", ""]
    return lines + [f"- {md_text(line)}" for line, _ in examples]


def markdown_report(report: ReportData, image_folder: str | None) -> MarkdownReport:
    """The Markdown text; with `image_folder` (relative to the Markdown file) also its plots."""
    lines = [render_markdown(report.summary).rstrip("\n")]
    images: dict[str, bytes] = {}
    if image_folder is not None:
        plots = report_plots(report)
        if plots:
            lines += ["", "## Plots"]
        for plot in plots:
            path = f"{image_folder}/{plot.name}.png"
            images[path] = figure_png(plot)
            lines.append("")
            lines += [f"![{md_text(plot.caption)}]({path})", "", f"*{md_text(plot.caption)}*"]
    if report.diagnostics.scored_questions:
        lines += _diagnostics(report.diagnostics)
    for changes in (*report.diagnostics.changes, *report.diagnostics.judge_changes):
        lines += _changes(changes)
    lines += _judge_examples(report)
    return MarkdownReport("\n".join(lines).rstrip("\n") + "\n", images)
