"""A run summary as a terminal table or Markdown."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _domains(summary: dict[str, Any]) -> list[str]:
    return sorted({d for m in summary["models"].values() for d in m["domains"]})


def _headline(summary: dict[str, Any]) -> str:
    line = (
        f"run {summary['run_id']}: {summary['state']}, {summary['dataset']['name']} "
        f"({summary['dataset']['split']}), history {summary['history']}"
    )
    return line + (f"\nerror: {summary['error']}" if summary["error"] else "")


def _difference(summary: dict[str, Any]) -> str | None:
    """The second model against the first (the reference), on the questions both answered."""
    models = list(summary["models"].items())
    if len(models) < 2 or models[0][1]["em"] is None or models[1][1]["em"] is None:
        return None
    (ref_label, ref), (label, other) = models[0], models[1]
    return (
        f"{label} - {ref_label}: EM {other['em'] - ref['em']:+.1f}, "
        f"F1 {other['f1'] - ref['f1']:+.1f} on {other['scored']} questions answered by both"
    )


def _left_out(summary: dict[str, Any]) -> list[str]:
    lines = []
    for label, m in summary["models"].items():
        if m["questions"] > m["scored"]:
            lines.append(
                f"{label}: {m['questions'] - m['scored']} of {m['questions']} questions left out "
                f"of the scores ({m['failed']} failed, not scored as wrong)"
            )
    for f in summary["failures"]:
        lines.append(f"  failed: {f['model']} story {f['story']} turn {f['turn']}: {f['error']}")
    if summary["failures_total"] > len(summary["failures"]):
        lines.append(f"  ... {summary['failures_total'] - len(summary['failures'])} more")
    return lines


def render_table(summary: dict[str, Any]) -> Group:
    models = Table(title="Scores (official CoQA EM/F1, 0-100)")
    for column in ("label", "model", "questions", "answered", "failed", "EM", "F1"):
        models.add_column(column, justify="left" if column in ("label", "model") else "right")
    for label, m in summary["models"].items():
        models.add_row(
            label, m["model"], str(m["questions"]), str(m["answered"]), str(m["failed"]),
            _fmt(m["em"]), _fmt(m["f1"]),
        )  # fmt: skip
    domains = Table(title="F1 (EM) per source domain")
    domains.add_column("domain")
    for label in summary["models"]:
        domains.add_column(label, justify="right")
    for domain in _domains(summary):
        cells = []
        for m in summary["models"].values():
            d = m["domains"].get(domain)
            cells.append(f"{_fmt(d['f1'])} ({_fmt(d['em'])}) n={d['scored']}" if d else "-")
        domains.add_row(domain, *cells)
    parts: list[Any] = [Text(_headline(summary)), models, domains]
    difference = _difference(summary)
    if difference:
        parts.append(Text(difference))
    parts.extend(Text(line) for line in _left_out(summary))
    return Group(*parts)


def render_markdown(summary: dict[str, Any]) -> str:
    lines = [f"# evalfleet run {summary['run_id']}", "", _headline(summary), ""]
    lines += [
        "| label | model | questions | answered | failed | EM | F1 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, m in summary["models"].items():
        lines.append(
            f"| {label} | `{m['model']}` | {m['questions']} | {m['answered']} | {m['failed']} "
            f"| {_fmt(m['em'])} | {_fmt(m['f1'])} |"
        )
    labels = list(summary["models"])
    lines += ["", "## F1 (EM) per source domain", ""]
    lines.append("| domain | " + " | ".join(labels) + " |")
    lines.append("|---|" + "---:|" * len(labels))
    for domain in _domains(summary):
        cells = []
        for m in summary["models"].values():
            d = m["domains"].get(domain)
            cells.append(f"{_fmt(d['f1'])} ({_fmt(d['em'])})" if d else "-")
        lines.append(f"| {domain} | " + " | ".join(cells) + " |")
    difference = _difference(summary)
    if difference:
        lines += ["", f"**{difference}**"]
    left_out = _left_out(summary)
    if left_out:
        lines += ["", "## Left out", "", *[f"- {line.strip()}" for line in left_out]]
    return "\n".join(lines) + "\n"
