"""A run summary (or a cross-run comparison) as a terminal table or Markdown."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from evalfleet.aggregator.answerability import GROUPS
from evalfleet.aggregator.judge_render import (
    AGREEMENT_COLUMNS,
    AGREEMENT_NOTE,
    AGREEMENT_TITLE,
    JUDGE_COLUMNS,
    agreement_rows,
    example_lines,
    judge_comparison_rows,
    judge_holm_note,
    judge_line,
    judge_title,
)
from evalfleet.aggregator.paired import (
    FEW_STORIES,
    FEW_STORIES_NOTE,
    TOO_FEW_STORIES,
    GroupComparison,
    MetricComparison,
    PairedComparison,
)
from evalfleet.aggregator.samples import noise_lines
from evalfleet.aggregator.summary_types import CrossRunSummary, RunSummary, Summary
from evalfleet.aggregator.truncation import truncation_line
from evalfleet.aggregator.verdict import verdict


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _domains(summary: Summary) -> list[str]:
    return sorted({d for m in summary.models.values() for d in m.domains})


def title(summary: Summary) -> str:
    if isinstance(summary, CrossRunSummary):
        a, b = summary.runs
        return f"evalfleet: run {b.run_id} against run {a.run_id}"
    assert isinstance(summary, RunSummary)
    return f"evalfleet run {summary.run_id}"


def headline(summary: Summary) -> str:
    dataset = f"{summary.dataset.name} ({summary.dataset.split})"
    if isinstance(summary, CrossRunSummary):
        sides = "; ".join(f"{r.name} = {r.model}, {r.state}" for r in summary.runs)
        return f"{dataset}, history {summary.history}: {sides}"
    assert isinstance(summary, RunSummary)
    line = f"run {summary.run_id}: {summary.state}, {dataset}, history {summary.history}"
    return line + (f"\nerror: {summary.error}" if summary.error else "")


def verdict_lines(summary: Summary) -> list[str]:
    """The verdict of every comparison; without one, the plain difference of the means."""
    if summary.comparisons:
        return [verdict(c).line for c in summary.comparisons]
    difference = _difference(summary)
    return [difference] if difference else []


def _ci(ci: tuple[float, float] | None) -> str:
    return "-" if ci is None else f"[{ci[0]:+.1f}, {ci[1]:+.1f}]"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


COMPARISON_COLUMNS = (
    "domain", "questions (stories)", "ΔF1 [95% CI]", "p", "ΔEM [95% CI]", "McNemar p",
    "F1 win/tie/loss",
)  # fmt: skip


def _delta(metric: MetricComparison) -> str:
    return f"{metric.difference:+.1f} {_ci(metric.ci)}"


def comparison_rows(comparison: PairedComparison) -> list[list[str]]:
    """Per domain then overall: the paired statistics of one comparison, as table cells."""
    groups: list[GroupComparison] = [*comparison.domains]
    if comparison.overall is not None:
        groups.append(comparison.overall)
    return [
        [
            g.domain, f"{g.questions} ({g.stories})", _delta(g.f1),
            TOO_FEW_STORIES if g.too_few_stories else _p(g.f1.p_shown),
            _delta(g.em), _p(g.mcnemar_p_shown),
            f"{g.f1_outcomes.wins}/{g.f1_outcomes.ties}/{g.f1_outcomes.losses}",
        ]
        for g in groups
    ]  # fmt: skip


def _few_stories(comparison: PairedComparison) -> bool:
    return any(g.too_few_stories for g in comparison.domains)


def holm_note(comparison: PairedComparison) -> str | None:
    """How the per-domain p-values were corrected for testing several domains."""
    if not comparison.domains:
        return None
    if comparison.holm_domains == 0:
        return f"No domain has {FEW_STORIES} stories or more: no per-domain p-value is shown."
    domains = f"{comparison.holm_domains} domain{'s' if comparison.holm_domains > 1 else ''}"
    return (
        f"Per-domain p-values Holm-adjusted over {domains} (those with "
        f"{FEW_STORIES} stories or more), and significance judged on them; the overall row is "
        "not adjusted."
    )


def comparison_notes(comparison: PairedComparison) -> list[str]:
    """The lines under a per-domain table: the correction, and which domains claim nothing."""
    notes = [note for note in (holm_note(comparison),) if note]
    return notes + ([FEW_STORIES_NOTE] if _few_stories(comparison) else [])


def _difference(summary: Summary) -> str | None:
    """The second model against the first (the reference), on the questions both answered."""
    models = list(summary.models.items())
    if len(models) < 2:
        return None
    (ref_label, ref), (label, other) = models[0], models[1]
    ref_em, other_em = ref.overall.em, other.overall.em
    ref_f1, other_f1 = ref.overall.f1, other.overall.f1
    if ref_em is None or other_em is None or ref_f1 is None or other_f1 is None:
        return None
    return (
        f"{label} - {ref_label}: EM {other_em - ref_em:+.1f}, "
        f"F1 {other_f1 - ref_f1:+.1f} on {other.overall.scored} questions answered by both"
    )


ANSWERABILITY_TITLE = "Questions with an answer (HasAns) and without (NoAns)"
ANSWERABILITY_COLUMNS = ("label", "group", "questions", "scored", "EM", "F1")
ANSWERABILITY_NOTE = (
    'A question without an answer is right (EM = F1 = 100) only when the answer is "unknown" '
    "or nothing, as the official SQuAD 2.0 script scores it."
)


def answerability_rows(summary: Summary) -> list[list[str]]:
    """Each model's HasAns and NoAns scores, as table cells; none when every question of the
    run has an answer (nothing to split)."""
    return [
        [label, group, str(s.questions), str(s.scored), _fmt(s.em), _fmt(s.f1)]
        for label, m in summary.models.items()
        if m.answerability
        for group in GROUPS
        for s in [m.answerability[group]]
    ]


def cut_line(summary: Summary) -> str:
    """Each model's answers cut at max_tokens, count and share."""
    return truncation_line({label: m.truncation for label, m in summary.models.items()})


def _left_out(summary: Summary) -> list[str]:
    lines = []
    for label, m in summary.models.items():
        s = m.overall
        if s.questions and not s.answered:
            # Failures are never scored: a model that answered nothing has no score, not 0.
            lines.append(
                f"{label}: no score: none of its {s.questions} questions answered "
                f"({s.failed} failed)"
            )
        elif s.questions > s.scored:
            lines.append(
                f"{label}: {s.questions - s.scored} of {s.questions} questions left out "
                f"of the scores ({s.failed} failed, not scored as wrong)"
            )
    for f in summary.failures:
        lines.append(f"  failed: {f.model} story {f.story} turn {f.turn}: {f.error}")
    if summary.failures_total > len(summary.failures):
        lines.append(f"  ... {summary.failures_total - len(summary.failures)} more")
    return lines


def _model_cells(summary: Summary) -> list[list[str]]:
    """label, model, questions, answered, failed, EM, F1 (and the judge's accuracy)."""
    judged = summary.judge is not None
    return [
        [label, m.model, str(s.questions), str(s.answered), str(s.failed), _fmt(s.em), _fmt(s.f1)]
        + ([_fmt(s.judge)] if judged else [])
        for label, m in summary.models.items()
        for s in [m.overall]
    ]


def _domain_cell(summary: Summary, domain: str, label: str) -> str | None:
    """F1 (EM), with the judge's accuracy after a slash when the run has a judge."""
    d = summary.models[label].domains.get(domain)
    if d is None:
        return None
    judge = f" / {_fmt(d.judge)}" if summary.judge is not None else ""
    return f"{_fmt(d.f1)} ({_fmt(d.em)}){judge}"


def _domains_title(summary: Summary) -> str:
    judge = " / judge accuracy" if summary.judge is not None else ""
    return f"F1 (EM){judge} per source domain"


def _model_columns(summary: Summary) -> list[str]:
    judge = ["judge"] if summary.judge is not None else []
    return ["label", "model", "questions", "answered", "failed", "EM", "F1", *judge]


def _table(title: str, columns: Sequence[str], rows: list[list[str]], left: int = 1) -> Table:
    table = Table(title=title, pad_edge=False)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < left else "right")
    for row in rows:
        table.add_row(*row)
    return table


def judge_parts(summary: Summary) -> list[RenderableType]:
    """The judge's tables and lines for the terminal: per comparison, then the agreement."""
    parts: list[RenderableType] = []
    for comparison in summary.comparisons:
        rows = judge_comparison_rows(comparison)
        if rows:
            parts.append(_table(judge_title(comparison), JUDGE_COLUMNS, rows))
            note = judge_holm_note(comparison)
            parts.extend([Text(note, style="dim")] if note else [])
    rows = agreement_rows(summary)
    if rows:
        parts += [
            _table(AGREEMENT_TITLE, AGREEMENT_COLUMNS, rows),
            Text(AGREEMENT_NOTE, style="dim"),
        ]
    for m in summary.judge.agreement if summary.judge else ():
        parts.extend(Text(f"  judged correct, EM wrong: {line}") for line, _ in example_lines(m))
    return parts


def render_table(summary: Summary) -> Group:
    models = Table(title="Scores (official CoQA EM/F1, 0-100)")
    for column in _model_columns(summary):
        models.add_column(column, justify="left" if column in ("label", "model") else "right")
    for row in _model_cells(summary):
        models.add_row(*row)
    domains = Table(title=_domains_title(summary))
    domains.add_column("domain")
    for label in summary.models:
        domains.add_column(label, justify="right")
    for domain in _domains(summary):
        cells = []
        for label, m in summary.models.items():
            d, cell = m.domains.get(domain), _domain_cell(summary, domain, label)
            cells.append(f"{cell} n={d.scored}" if d and cell else "-")
        domains.add_row(domain, *cells)
    parts: list[RenderableType] = [Text(headline(summary)), models, Text(cut_line(summary))]
    line = judge_line(summary)
    parts.extend([Text(line)] if line else [])
    split = answerability_rows(summary)
    if split:
        answerability = Table(title=ANSWERABILITY_TITLE)
        for column in ANSWERABILITY_COLUMNS:
            left = column in ("label", "group")
            answerability.add_column(column, justify="left" if left else "right")
        for row in split:
            answerability.add_row(*row)
        parts += [answerability, Text(ANSWERABILITY_NOTE, style="dim")]
    parts.append(domains)
    for comparison in summary.comparisons:
        # No edge padding: the two columns it frees keep domain names whole at 80 columns.
        table = Table(
            title=f"{comparison.other} against {comparison.reference} (paired, per domain)",
            pad_edge=False,
        )
        for column in COMPARISON_COLUMNS:
            table.add_column(column, justify="left" if column == "domain" else "right")
        for row in comparison_rows(comparison):
            table.add_row(*row)
        parts.append(table)
        parts.extend(Text(note, style="dim") for note in comparison_notes(comparison))
    parts.extend(Text(line) for line in noise_lines(summary.sampling_noise))
    parts += judge_parts(summary)
    parts.extend(Text(line, style="bold") for line in verdict_lines(summary))
    parts.extend(Text(line, style="bold yellow") for line in summary.warnings)
    parts.extend(Text(line) for line in _left_out(summary))
    return Group(*parts)


def render_markdown(summary: Summary) -> str:
    lines = [f"# {title(summary)}", "", headline(summary), ""]
    lines += [f"**{line}**" for line in verdict_lines(summary)]
    lines += [""] if verdict_lines(summary) else []
    lines += [f"> **{line}**" for line in summary.warnings]
    lines += [""] if summary.warnings else []
    columns = _model_columns(summary)
    lines += ["| " + " | ".join(columns) + " |", "|---|---|" + "---:|" * (len(columns) - 2)]
    for label, model, *cells in _model_cells(summary):
        lines.append(f"| {label} | `{model}` | " + " | ".join(cells) + " |")
    lines += ["", cut_line(summary)]
    line = judge_line(summary)
    lines += ["", line] if line else []
    split = answerability_rows(summary)
    if split:
        lines += ["", f"## {ANSWERABILITY_TITLE}", ""]
        lines.append("| " + " | ".join(ANSWERABILITY_COLUMNS) + " |")
        lines.append("|---|---|" + "---:|" * (len(ANSWERABILITY_COLUMNS) - 2))
        lines += ["| " + " | ".join(row) + " |" for row in split]
        lines += ["", ANSWERABILITY_NOTE]
    labels = list(summary.models)
    lines += ["", f"## {_domains_title(summary)}", ""]
    lines.append("| domain | " + " | ".join(labels) + " |")
    lines.append("|---|" + "---:|" * len(labels))
    for domain in _domains(summary):
        cells = [_domain_cell(summary, domain, label) or "-" for label in labels]
        lines.append(f"| {domain} | " + " | ".join(cells) + " |")
    for comparison in summary.comparisons:
        lines += ["", f"## {comparison.other} against {comparison.reference}, paired", ""]
        lines.append("| " + " | ".join(COMPARISON_COLUMNS) + " |")
        lines.append("|---|" + "---:|" * (len(COMPARISON_COLUMNS) - 1))
        lines += ["| " + " | ".join(row) + " |" for row in comparison_rows(comparison)]
        lines += [line for note in comparison_notes(comparison) for line in ("", note)]
    noise = noise_lines(summary.sampling_noise)
    if noise:
        lines += ["", "## Sampling noise", "", noise[0], "", *[f"- {line}" for line in noise[1:]]]
    lines += judge_markdown(summary)
    left_out = _left_out(summary)
    if left_out:
        lines += ["", "## Left out", "", *[f"- {line.strip()}" for line in left_out]]
    return "\n".join(lines) + "\n"


def _markdown_table(columns: Sequence[str], rows: list[list[str]]) -> list[str]:
    head = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    return head + ["| " + " | ".join(row) + " |" for row in rows]


def judge_markdown(summary: Summary) -> list[str]:
    """The judge's sections: per comparison, then the agreement (examples: the full report)."""
    lines: list[str] = []
    for comparison in summary.comparisons:
        rows = judge_comparison_rows(comparison)
        if rows:
            lines += ["", f"## {judge_title(comparison)}", ""]
            lines += _markdown_table(JUDGE_COLUMNS, rows)
            note = judge_holm_note(comparison)
            lines += ["", note] if note else []
    rows = agreement_rows(summary)
    if rows:
        lines += ["", f"## {AGREEMENT_TITLE}", "", *_markdown_table(AGREEMENT_COLUMNS, rows)]
        lines += ["", AGREEMENT_NOTE]
    return lines
