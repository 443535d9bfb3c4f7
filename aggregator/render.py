"""A run summary (or a cross-run comparison) as a terminal table or Markdown."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from evalfleet.aggregator.paired import FEW_STORIES, FEW_STORIES_NOTE


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _domains(summary: dict[str, Any]) -> list[str]:
    return sorted({d for m in summary["models"].values() for d in m["domains"]})


def title(summary: dict[str, Any]) -> str:
    if "runs" in summary:
        a, b = summary["runs"]
        return f"evalfleet: run {b['run_id']} against run {a['run_id']}"
    return f"evalfleet run {summary['run_id']}"


def headline(summary: dict[str, Any]) -> str:
    dataset = f"{summary['dataset']['name']} ({summary['dataset']['split']})"
    if "runs" in summary:
        sides = "; ".join(f"{r['name']} = {r['model']}, {r['state']}" for r in summary["runs"])
        return f"{dataset}, history {summary['history']}: {sides}"
    line = f"run {summary['run_id']}: {summary['state']}, {dataset}, history {summary['history']}"
    return line + (f"\nerror: {summary['error']}" if summary["error"] else "")


def verdict_lines(summary: dict[str, Any]) -> list[str]:
    """The verdict of every comparison; without one, the plain difference of the means."""
    comparisons = summary.get("comparison")
    if comparisons:
        return [c["verdict"] for c in comparisons.values()]
    difference = _difference(summary)
    return [difference] if difference else []


def _ci(ci: list[float] | None) -> str:
    return "-" if ci is None else f"[{ci[0]:+.1f}, {ci[1]:+.1f}]"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


COMPARISON_COLUMNS = (
    "domain", "questions (stories)", "ΔF1 [95% CI]", "p", "ΔEM [95% CI]", "McNemar p",
    "F1 win/tie/loss",
)  # fmt: skip


def comparison_rows(comparison: dict[str, Any]) -> list[list[str]]:
    """Per domain then overall: the paired statistics of one comparison, as table cells."""
    groups = [*comparison["domains"].items(), ("overall", comparison["overall"])]
    rows = []
    for domain, g in groups:
        if g is None:
            continue
        f1, em, o = g["f1"], g["em"], g["f1_outcomes"]
        rows.append(
            [
                domain, f"{g['questions']} ({g['stories']})",
                f"{f1['difference']:+.1f} {_ci(f1['ci'])}", _p(f1["p_value"]),
                f"{em['difference']:+.1f} {_ci(em['ci'])}", _p(g["mcnemar"]["p_value"]),
                f"{o['wins']}/{o['ties']}/{o['losses']}",
            ]
        )  # fmt: skip
    return rows


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
    parts: list[Any] = [Text(headline(summary)), models, domains]
    for label, comparison in (summary.get("comparison") or {}).items():
        table = Table(title=f"{label} against {comparison['reference']} (paired, per domain)")
        for column in COMPARISON_COLUMNS:
            table.add_column(column, justify="left" if column == "domain" else "right")
        for row in comparison_rows(comparison):
            table.add_row(*row)
        parts.append(table)
        if any(d["stories"] < FEW_STORIES for d in comparison["domains"].values()):
            parts.append(Text(FEW_STORIES_NOTE, style="dim"))
    parts.extend(Text(line, style="bold") for line in verdict_lines(summary))
    parts.extend(Text(line) for line in _left_out(summary))
    return Group(*parts)


def render_markdown(summary: dict[str, Any]) -> str:
    lines = [f"# {title(summary)}", "", headline(summary), ""]
    lines += [f"**{line}**" for line in verdict_lines(summary)]
    lines += [""] if verdict_lines(summary) else []
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
    for label, comparison in (summary.get("comparison") or {}).items():
        lines += ["", f"## {label} against {comparison['reference']}, paired", ""]
        lines.append("| " + " | ".join(COMPARISON_COLUMNS) + " |")
        lines.append("|---|" + "---:|" * (len(COMPARISON_COLUMNS) - 1))
        lines += ["| " + " | ".join(row) + " |" for row in comparison_rows(comparison)]
        if any(d["stories"] < FEW_STORIES for d in comparison["domains"].values()):
            lines += ["", FEW_STORIES_NOTE]
    left_out = _left_out(summary)
    if left_out:
        lines += ["", "## Left out", "", *[f"- {line.strip()}" for line in left_out]]
    return "\n".join(lines) + "\n"
