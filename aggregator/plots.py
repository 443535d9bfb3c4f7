"""The report's plots, drawn with matplotlib's object API (no pyplot, no global state):
inline SVG for the HTML report, PNG files for the Markdown one."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from evalfleet.aggregator.diagnostics import Bin, Diagnostics
from evalfleet.aggregator.paired import GroupComparison, MetricComparison, PairedComparison
from evalfleet.aggregator.report_data import ReportData

__all__ = ["Plot", "figure_png", "figure_svg", "report_plots"]

REFERENCE_COLOR = "#8a94a6"
COLORS = ("#e8710a", "#1a73e8", "#188038", "#a142f4", "#d93025", "#12b5cb")
_STYLE: dict[Any, Any] = {  # matplotlib rc parameters
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "svg.fonttype": "none",  # text stays text: selectable, searchable, crisp
}
_XML_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)


@dataclass(frozen=True)
class Plot:
    """One figure of the report: a file-safe name, a caption, the figure."""

    name: str
    caption: str
    figure: Figure


def _plain(text: str) -> str:
    """User text for matplotlib: a `$` would start math mode."""
    return text.replace("$", r"\$")


def _colors(labels: Sequence[str]) -> dict[str, str]:
    return {
        label: REFERENCE_COLOR if i == 0 else COLORS[(i - 1) % len(COLORS)]
        for i, label in enumerate(labels)
    }


def _groups(comparison: PairedComparison) -> list[GroupComparison]:
    return [*comparison.domains, *([comparison.overall] if comparison.overall else [])]


def _metric(group: GroupComparison | None, metric: str) -> MetricComparison | None:
    """A group's "f1", "em" or "judge" (its accuracy; None where nothing was graded)."""
    if group is None:
        return None
    if metric == "judge":
        return None if group.judge is None else group.judge.accuracy
    found: MetricComparison = getattr(group, metric)
    return found


def _name(metric: str) -> str:
    return "judge accuracy" if metric == "judge" else metric.upper()


def _metrics(report: ReportData) -> tuple[str, ...]:
    """The plotted metrics: F1 and EM, and the judge's accuracy when it graded anything."""
    judged = any(_metric(g, "judge") for c in report.comparisons for g in _groups(c))
    return ("f1", "em", "judge") if judged else ("f1", "em")


def _error(value: float, ci: tuple[float, float] | None) -> tuple[float, float]:
    return (0.0, 0.0) if ci is None else (value - ci[0], ci[1] - value)


def _score_axes(ax: Axes, report: ReportData, metric: str) -> None:
    """Grouped bars: each model's score per domain, with its story-bootstrap 95% interval."""
    comparisons = report.comparisons
    domains = [g.domain for g in _groups(comparisons[0])]
    labels = [comparisons[0].reference, *(c.other for c in comparisons)]
    colors = _colors(labels)
    width = 0.8 / len(labels)
    x = np.arange(len(domains))
    for i, label in enumerate(labels):
        comparison = comparisons[max(0, i - 1)]
        by_domain = {g.domain: g for g in _groups(comparison)}
        values, errors = [], []
        for domain in domains:
            m = _metric(by_domain.get(domain), metric)
            value = (m.reference if i == 0 else m.other) if m else 0.0
            ci = (m.reference_ci if i == 0 else m.other_ci) if m else None
            values.append(value)
            errors.append(_error(value, ci))
        ax.bar(
            x + (i - (len(labels) - 1) / 2) * width, values, width,
            yerr=np.array(errors).T, capsize=2, color=colors[label], label=_plain(label),
            error_kw={"elinewidth": 0.8, "ecolor": "#333333"},
        )  # fmt: skip
    ax.set_xticks(x, [_plain(d) for d in domains], rotation=20, ha="right")
    ax.set_ylim(0, 100)
    ax.set_title(_name(metric))
    ax.grid(axis="y", alpha=0.3)


def _scores_plot(report: ReportData) -> Plot:
    metrics = _metrics(report)
    figure = Figure(figsize=(4.0 * len(metrics), 3.2), layout="constrained")
    axes = figure.subplots(1, len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        _score_axes(ax, report, metric)
    axes[0].legend(loc="upper left", fontsize=8, frameon=False)
    names = "F1, EM and the judge's accuracy" if "judge" in metrics else "F1 and EM"
    return Plot(
        "scores",
        f"{names} per source domain and overall (0-100); whiskers: 95% intervals (story bootstrap)",
        figure,
    )


def _difference_plot(comparison: PairedComparison, index: int) -> Plot:
    """Forest plot: the paired difference per domain with its 95% interval."""
    groups = _groups(comparison)
    metrics = ("f1", "em", "judge") if any(g.judge for g in groups) else ("f1", "em")
    figure = Figure(figsize=(4.0 * len(metrics), 0.32 * len(groups) + 1.1), layout="constrained")
    axes = figure.subplots(1, len(metrics), sharey=True)
    y = np.arange(len(groups))[::-1]
    for ax, metric in zip(axes, metrics, strict=True):
        for row, group in zip(y, groups, strict=True):
            found = _metric(group, metric)
            if found is None:  # not graded for both in this domain
                continue
            m: MetricComparison = found
            color = "#188038" if m.significant and m.difference > 0 else (
                "#d93025" if m.significant else "#5f6368")  # fmt: skip
            err = np.array([_error(m.difference, m.ci)]).T
            overall = group is comparison.overall
            ax.errorbar(
                m.difference, row, xerr=err, fmt="D" if overall else "o", color=color,
                markersize=6 if overall else 4, capsize=3, elinewidth=1.6 if overall else 1,
            )  # fmt: skip
        ax.axvline(0, color="#333333", linewidth=0.8)
        ax.set_title(f"Δ{_name(metric)}: {comparison.other} − {comparison.reference}")
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel("points")
    axes[0].set_yticks(y, [_plain(f"{g.domain} (n={g.questions})") for g in groups])
    return Plot(
        f"difference-{index}",
        f"{comparison.other} against {comparison.reference}: paired difference per domain, "
        "95% interval (green: better, red: worse, grey: not significant)",
        figure,
    )


def _bins_plot(
    name: str, caption: str, title: str, xlabel: str, diagnostics: Diagnostics,
    bins_of: str,
) -> Plot:  # fmt: skip
    figure = Figure(figsize=(4.6, 2.9), layout="constrained")
    ax = figure.subplots()
    labels = [m.label for m in diagnostics.models]
    colors = _colors(labels)
    width = 0.8 / max(1, len(labels))
    for i, m in enumerate(diagnostics.models):
        bins: tuple[Bin, ...] = getattr(m, bins_of)
        total = max(1, sum(b.count for b in bins))
        x = np.arange(len(bins))
        ax.bar(
            x + (i - (len(labels) - 1) / 2) * width, [100 * b.count / total for b in bins],
            width, color=colors[m.label], label=_plain(m.label),
        )  # fmt: skip
        ax.set_xticks(x, [b.label for b in bins])
    ax.set_ylabel("% of answers")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return Plot(name, caption, figure)


def report_plots(report: ReportData) -> list[Plot]:
    """Every plot of the report, in the order shown."""
    with rc_context(_STYLE):
        return _all_plots(report)


def _all_plots(report: ReportData) -> list[Plot]:
    plots = []
    if report.comparisons and report.comparisons[0].overall is not None:
        plots.append(_scores_plot(report))
        plots += [
            _difference_plot(c, i)
            for i, c in enumerate(report.comparisons, start=1)
            if c.overall is not None
        ]
    if report.diagnostics.scored_questions:
        plots.append(
            _bins_plot(
                "f1-distribution", "How many answers get each F1 (scored questions)",
                "F1 per answer", "F1", report.diagnostics, "f1_bins",
            )
        )  # fmt: skip
        plots.append(
            _bins_plot(
                "answer-length", "Answer length in words (scored questions)",
                "Answer length", "words", report.diagnostics, "length_bins",
            )
        )  # fmt: skip
    return plots


def figure_svg(plot: Plot) -> str:
    """An <svg> element to inline in HTML (no XML prologue; ids salted per plot)."""
    buffer = io.StringIO()
    with rc_context({**_STYLE, "svg.hashsalt": plot.name}):
        plot.figure.savefig(buffer, format="svg", metadata={"Date": None})
    return _XML_PROLOGUE.sub("", buffer.getvalue(), count=1)


def figure_png(plot: Plot, dpi: int = 144) -> bytes:
    buffer = io.BytesIO()
    with rc_context(_STYLE):
        plot.figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
