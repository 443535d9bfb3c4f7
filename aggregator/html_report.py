"""The report as ONE self-contained HTML file: inline CSS, inline SVG plots, no script, no
network. Every piece of user text (stories, questions, answers, labels) is escaped."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from evalfleet.aggregator.diagnostics import ChangedQuestion, ChangeLists, Diagnostics
from evalfleet.aggregator.html_style import CSS as _CSS
from evalfleet.aggregator.judge_html import (
    graded_html,
    judge_agreement_html,
    judge_comparison_html,
    judge_line_html,
)
from evalfleet.aggregator.mcnemar import EM_RIGHT
from evalfleet.aggregator.no_answer import NO_GOLD
from evalfleet.aggregator.paired import (
    ALPHA,
    FEW_STORIES,
    POWER,
    TOO_FEW_STORIES,
    GroupComparison,
    MetricComparison,
    PairedComparison,
)
from evalfleet.aggregator.plots import Plot, figure_svg, report_plots
from evalfleet.aggregator.render import (
    ANSWERABILITY_COLUMNS,
    ANSWERABILITY_NOTE,
    ANSWERABILITY_TITLE,
    answerability_rows,
    comparison_notes,
    headline,
    verdict_lines,
)
from evalfleet.aggregator.report_data import ReportData
from evalfleet.aggregator.samples import noise_lines
from evalfleet.aggregator.summary_types import Summary
from evalfleet.aggregator.verdict import Verdict, format_ci, format_p, verdict

__all__ = ["render_html"]


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _signed(value: float) -> str:
    css = "pos" if value > 0 else "neg" if value < 0 else ""
    return f'<span class="{css}">{value:+.1f}</span>'


def _difference(metric: MetricComparison) -> str:
    """Coloured only when significant: a sign alone is no finding."""
    if not metric.significant:
        return f"{metric.difference:+.1f}"
    return _signed(metric.difference)


def _ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f'<span class="ci">[{ci[0]:+.1f}, {ci[1]:+.1f}]</span>'


def _p(p: float | None) -> str:
    return "-" if p is None else "&lt;0.001" if p < 0.001 else f"{p:.3f}"


def _tile(key: str, value: str, sub: str) -> str:
    return (
        f'<div class="tile"><div class="k">{_e(key)}</div><div class="v">{value}</div>'
        f'<div class="s">{_e(sub)}</div></div>'
    )


def _verdict_block(comparison: PairedComparison) -> str:
    v: Verdict = verdict(comparison)
    parts = [
        f'<section class="verdict {v.kind}" data-verdict="{v.kind}">',
        f'<div class="headline">{_e(v.headline)}</div>',
        f'<div class="detail">{_e(v.detail)}</div>',
    ]
    group = comparison.overall
    if group is not None:
        f1, em, o = group.f1, group.em, group.f1_outcomes
        parts.append('<div class="tiles">')
        for name, metric in (("ΔF1", f1), ("ΔEM", em)):
            sub = f"{format_ci(metric.ci)}, {format_p(metric.p_value)}"
            parts.append(_tile(name, _difference(metric), sub))
        parts.append(
            _tile(
                "McNemar on EM", format_p(group.mcnemar.p_value),
                f"{group.mcnemar.fixed} fixed, {group.mcnemar.broke} broke",
            )
        )  # fmt: skip
        parts.append(_tile("F1 per question", f"{o.wins}/{o.ties}/{o.losses}", "win / tie / loss"))
        if group.judge is not None:
            j = group.judge
            sub = f"{format_ci(j.accuracy.ci)}, {format_p(j.accuracy.p_value)}; McNemar "
            parts.append(_tile("Δjudge accuracy", _difference(j.accuracy), sub + format_p(
                j.mcnemar.p_value)))  # fmt: skip
        parts.append(
            _tile(
                "Smallest detectable", f"{_num(f1.mde)} F1",
                f"{_num(em.mde)} EM; {POWER:.0%} power, α = {ALPHA}",
            )
        )  # fmt: skip
        parts.append(
            _tile("Questions", str(group.questions), f"in {group.stories} stories, both answered")
        )
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def _models_table(summary: Summary) -> str:
    rows = []
    for label, m in summary.models.items():
        s = m.overall
        rows.append(
            f"<tr><td>{_e(label)}</td><td class='text'>{_e(m.model)}</td>"
            f"<td>{s.questions}</td><td>{s.answered}</td><td>{s.failed}</td>"
            f"<td>{s.scored}</td><td>{_num(s.em)}</td><td>{_num(s.f1)}</td>"
            + (f"<td>{_num(s.judge)}</td>" if summary.judge else "")
            + f"<td>{m.usage.completion_tokens:,}</td>"
            f"<td>{m.truncation.truncated} ({100 * m.truncation.share:.1f}%)</td></tr>"
        )
    return (
        "<table><thead><tr><th>label</th><th class='text'>model</th><th>questions</th>"
        "<th>answered</th><th>failed</th><th>scored</th><th>EM</th><th>F1</th>"
        + ("<th>judge</th>" if summary.judge else "")
        + "<th>completion tokens</th><th>cut by max_tokens</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _answerability_table(summary: Summary) -> str:
    """HasAns and NoAns scores per model; nothing when every question has an answer."""
    rows = answerability_rows(summary)
    if not rows:
        return ""
    head = "".join(
        f"<th{' class=text' if c == 'group' else ''}>{_e(c)}</th>" for c in ANSWERABILITY_COLUMNS
    )
    body = "".join(
        f"<tr><td>{_e(label)}</td><td class='text'>{_e(group)}</td>"
        + "".join(f"<td>{_e(cell)}</td>" for cell in cells)
        + "</tr>"
        for label, group, *cells in rows
    )
    return (
        f"<h3>{_e(ANSWERABILITY_TITLE)}</h3><table id='answerability'><thead><tr>{head}</tr>"
        f"</thead><tbody>{body}</tbody></table><p class='note'>{_e(ANSWERABILITY_NOTE)}</p>"
    )


def _group_row(group: GroupComparison, overall: bool) -> str:
    f1, em, o = group.f1, group.em, group.f1_outcomes
    p = f"<span class='badge'>{TOO_FEW_STORIES}</span>" if group.too_few_stories else _p(f1.p_shown)
    return (
        f"<tr{' class=overall' if overall else ''}><td>{_e(group.domain)}</td>"
        f"<td>{group.questions} ({group.stories})</td>"
        f"<td>{_num(f1.reference)} → {_num(f1.other)}</td>"
        f"<td>{_difference(f1)} {_ci(f1.ci)}</td><td>{p}</td>"
        f"<td>{_num(em.reference)} → {_num(em.other)}</td>"
        f"<td>{_difference(em)} {_ci(em.ci)}</td>"
        f"<td>{_p(group.mcnemar_p_shown)}</td>"
        f"<td>{o.wins}/{o.ties}/{o.losses}</td></tr>"
    )


def _domain_table(comparison: PairedComparison) -> str:
    ref, other = _e(comparison.reference), _e(comparison.other)
    rows = [_group_row(g, False) for g in comparison.domains]
    if comparison.overall is not None:
        rows.append(_group_row(comparison.overall, True))
    return (
        f"<div class='wide'><table><thead><tr><th>domain</th><th>questions (stories)</th>"
        f"<th>F1 {ref} → {other}</th><th>ΔF1 [95% CI]</th><th>p</th><th>EM</th>"
        f"<th>ΔEM [95% CI]</th><th>McNemar p</th><th>F1 win/tie/loss</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    ) + "".join(f"<p class='note'>{_e(note)}</p>" for note in comparison_notes(comparison))


def _figure(plot: Plot) -> str:
    return (
        f'<figure id="plot-{_e(plot.name)}">{figure_svg(plot)}'
        f"<figcaption>{_e(plot.caption)}</figcaption></figure>"
    )


def _diagnostics_table(diagnostics: Diagnostics) -> str:
    rows = "".join(
        f"<tr><td>{_e(m.label)}</td><td>{m.answers}</td><td>{_num(m.mean_words)}</td>"
        f"<td>{_num(m.median_words)}</td><td>{m.verbose_misses}</td>"
        f"<td>{_num(None if m.verbose_share is None else 100 * m.verbose_share)}%</td></tr>"
        for m in diagnostics.models
    )
    return (
        "<table><thead><tr><th>label</th><th>answers</th><th>mean words</th>"
        "<th>median words</th><th>hold a gold answer, fail EM</th><th>share</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"<p class='note'>An answer that holds a gold answer (normalized, as whole words) but "
        f"fails exact match (EM &lt; {EM_RIGHT}) is right but too wordy: verbosity, not "
        "ignorance.</p>"
    )


def _change(q: ChangedQuestion, reference: str, other: str) -> str:
    gold = " | ".join(q.references) or NO_GOLD
    return (
        '<article class="change">'
        f'<div class="where">{_e(q.source)} · story {_e(q.story_key)} · turn {q.turn} · '
        f"ΔF1 {_signed(q.other_f1 - q.reference_f1)}</div>"
        f'<div class="q">{_e(q.question)}</div>'
        f'<div class="ans"><span class="who">{_e(reference)}</span>'
        f'<span class="said">{_e(q.reference_answer)}</span>'
        f'<span class="f1">F1 {q.reference_f1:.0f}</span></div>'
        + graded_html(q.reference_verdict, q.reference_reason)
        + f'<div class="ans"><span class="who">{_e(other)}</span>'
        f'<span class="said">{_e(q.other_answer)}</span>'
        f'<span class="f1">F1 {q.other_f1:.0f}</span></div>'
        + graded_html(q.other_verdict, q.other_reason)
        + f'<div class="gold"><span class="badge">gold</span> {_e(gold)}</div>'
        f"<blockquote>{_e(q.excerpt)}</blockquote></article>"
    )


def _change_section(changes: ChangeLists) -> str:
    ref, other = changes.reference, changes.other
    judged = changes.metric == "judge"
    by = " by the judge" if judged else ""
    parts = [f"<h2>What {_e(other)} fixed and broke against {_e(ref)}{by}</h2>"]
    for name, total, items, order in (
        ("fixed", changes.fixed_total, changes.fixed, "largest gain first"),
        ("broke", changes.broke_total, changes.broke, "largest loss first"),
    ):
        how = (
            f"judged {'incorrect → correct' if name == 'fixed' else 'correct → incorrect'}; "
            f"{len(items)} shown, story order"
            if judged
            else f"F1 {'up' if name == 'fixed' else 'down'}; {len(items)} shown, {order}"
        )
        parts.append(
            f'<h3 id="{"judge-" if judged else ""}{name}-{_e(other)}">{name.capitalize()}: '
            f"{total} questions ({how})</h3>"
        )
        parts += [_change(q, ref, other) for q in items]
        if not items:
            parts.append("<p class='note'>None.</p>")
    return "\n".join(parts)


def _left_out(summary: Summary) -> str:
    failures = summary.failures
    if not failures:
        return ""
    rows = "".join(
        f"<tr><td>{_e(f.model)}</td><td>{_e(f.story)}</td><td>{f.turn}</td>"
        f"<td class='text'>{_e(f.error)}</td></tr>"
        for f in failures
    )
    more = summary.failures_total - len(failures)
    return (
        "<h2>Left out of the scores</h2><p class='note'>Failed API calls are never scored as "
        "wrong answers; these questions are left out of every score.</p>"
        "<table><thead><tr><th>model</th><th>story</th><th>turn</th><th class='text'>error</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        + (f"<p class='note'>… and {more} more.</p>" if more > 0 else "")
    )


def _noise(summary: Summary) -> str:
    lines = noise_lines(summary.sampling_noise)
    if not lines:
        return ""
    items = "".join(f"<li>{_e(line)}</li>" for line in lines[1:])
    return f"<h2>Sampling noise</h2><p class='note'>{_e(lines[0])}</p><ul>{items}</ul>"


def _method(comparisons: Iterable[PairedComparison], judged: bool) -> str:
    resamples = next((c.resamples for c in comparisons), 0)
    return (
        "<footer><p><b>How to read this.</b> Differences are the other model minus the "
        "reference (the run's first model), in points on the official 0-100 scale, on the "
        "questions both answered. 95% intervals: a paired bootstrap over stories (the turns "
        f"of a story are correlated), {resamples} resamples with a fixed seed, as a t interval "
        "on the bootstrap standard error with stories − 1 degrees of freedom (a plain "
        "percentile interval was too narrow with 20 stories: see bench/calibration.py). "
        "p-values come from the same test. McNemar: exact binomial test on right/wrong "
        f"answers, right meaning EM ≥ {EM_RIGHT} (EM is fractional with several references); it "
        "treats questions as independent. Smallest detectable difference: (t<sub>0.975</sub> "
        "+ t<sub>0.8</sub>) × standard error: a true difference this large is found 80% of "
        "the time. Per-domain p-values (and the colour of a domain's difference) are "
        "Holm-adjusted over the domains with at least "
        f"{FEW_STORIES} stories, so that testing several domains keeps the chance of any false "
        "claim at most 5%; a domain with fewer stories gets its estimate and interval only.</p>"
        + (
            "<p><b>The judge.</b> Its accuracy is the share of answers graded correct (an "
            "answer with EM = 1 by rule, with no call), on the questions graded for both "
            "models; a grade the judge could not give is left out, never counted wrong. Its "
            "difference has the same interval and test, McNemar reads correct / not correct, "
            "and its per-domain p-values are their own Holm family.</p>"
            if judged
            else ""
        )
        + "<p>Made by evalfleet.</p></footer>"
    )


def _sections(report: ReportData, plots: list[Plot]) -> Iterable[str]:
    summary = report.summary
    by_name = {p.name: p for p in plots}
    yield f"<h1>{_e(report.title)}</h1>"
    yield f"<p class='meta'>{_e(headline(summary))}</p>"
    if report.comparisons:
        yield from (_verdict_block(c) for c in report.comparisons)
    else:
        yield from (f"<p>{_e(line)}</p>" for line in verdict_lines(summary))
    yield from (f"<p class='warning'>{_e(line)}</p>" for line in summary.warnings)
    yield (
        "<h2>Scores</h2>" + _models_table(summary) + judge_line_html(summary)
        + _answerability_table(summary)
    )  # fmt: skip
    if "scores" in by_name:
        yield "<h2>Where the difference is</h2>" + _figure(by_name["scores"])
    for i, comparison in enumerate(report.comparisons, start=1):
        yield f"<h3>{_e(comparison.other)} against {_e(comparison.reference)}, per domain</h3>"
        if f"difference-{i}" in by_name:
            yield _figure(by_name[f"difference-{i}"])
        yield _domain_table(comparison) + judge_comparison_html(summary, i)
    yield _noise(summary)
    if "f1-distribution" in by_name:
        yield (
            "<h2>How the models answer</h2><div class='columns'>"
            + _figure(by_name["f1-distribution"])
            + _figure(by_name["answer-length"])
            + "</div>"
            + _diagnostics_table(report.diagnostics)
        )
    yield judge_agreement_html(summary)
    changes = (*report.diagnostics.changes, *report.diagnostics.judge_changes)
    yield from (_change_section(c) for c in changes)
    yield _left_out(summary)
    yield _method(report.comparisons, summary.judge is not None)


def render_html(report: ReportData) -> str:
    """The whole report as one HTML document."""
    plots = report_plots(report)
    body = "\n".join(s for s in _sections(report, plots) if s)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(report.title)}</title><style>{_CSS}</style></head>"
        f"<body><main>\n{body}\n</main></body></html>\n"
    )
