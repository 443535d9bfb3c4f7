"""Honest per-domain claims: Holm over the domains, and no claim with too few stories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from unit.aggregator.simulated_run import database, three_story_run
from unit.aggregator.test_paired_statistics import turn

from evalfleet.aggregator.holm import holm_adjust
from evalfleet.aggregator.html_report import render_html
from evalfleet.aggregator.paired import TOO_FEW_STORIES, compare_models
from evalfleet.aggregator.render import holm_note, render_markdown, render_table
from evalfleet.aggregator.report_data import report_json, run_report
from evalfleet.aggregator.scored import ScoredTurn


def test_holm_matches_the_hand_computation() -> None:
    # Given four p-values: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1
    # = 0.02, 0.03, 0.06, 0.04 -> made monotone: 0.02, 0.03, 0.06, 0.06
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # And one test is not adjusted; none gives nothing; nothing exceeds 1
    assert holm_adjust([0.2]) == [0.2]
    assert holm_adjust([]) == []
    assert holm_adjust([0.6, 0.7]) == [1.0, 1.0]


def _domains_run() -> list[ScoredTurn]:
    """Two stories of "wiki" with the same large gain (a p of 0 unadjusted), and two domains
    of six stories: "cnn" with a clear gain, "race" with noise."""
    turns: list[ScoredTurn] = []
    gains = {"wiki": [0.5, 0.5], "cnn": [0.4, 0.5, 0.3, 0.6, 0.45, 0.35],
             "race": [0.2, -0.3, 0.1, -0.1, 0.25, -0.2]}  # fmt: skip
    for source, story_gains in gains.items():
        for s, gain in enumerate(story_gains):
            for n in (1, 2):
                key = f"{source}{s}"
                turns.append(turn("base", key, n, 0.0, 0.4, source=source))
                turns.append(turn("tuned", key, n, 0.0, 0.4 + gain, source=source))
    return turns


def test_domains_are_holm_adjusted_and_few_stories_make_no_claim() -> None:
    comparison = compare_models(_domains_run(), "base", "tuned", seed=1)
    cnn, race, wiki = comparison.domains
    # Then only the two domains of six stories are in the family
    assert comparison.holm_domains == 2
    # And their p-values are Holm-adjusted together, significance judged on those
    raw = [cnn.f1.p_value, race.f1.p_value]
    assert raw[0] is not None and raw[1] is not None
    assert [cnn.f1.p_holm, race.f1.p_holm] == pytest.approx(holm_adjust(raw))
    assert cnn.f1.significant and not race.f1.significant
    assert cnn.mcnemar_p_holm is not None and cnn.f1.p_shown == cnn.f1.p_holm
    # And the two-story domain keeps its estimate and interval, but claims nothing
    assert wiki.too_few_stories and not cnn.too_few_stories
    assert wiki.f1.difference == pytest.approx(50.0) and wiki.f1.ci is not None
    assert wiki.f1.p_value == 0.0  # unadjusted, as the test gives it
    assert not wiki.f1.significant and wiki.f1.p_holm is None and wiki.f1.p_shown is None
    assert wiki.mcnemar_p_shown is None


def test_the_overall_comparison_is_not_adjusted() -> None:
    turns = _domains_run()
    comparison = compare_models(turns, "base", "tuned", seed=1)
    overall = comparison.overall
    assert overall is not None and not overall.too_few_stories
    assert overall.f1.p_holm is None and overall.f1.p_shown == overall.f1.p_value
    assert overall.f1.significant == (overall.f1.ci is not None and overall.f1.ci[0] > 0)
    assert overall.mcnemar_p_shown == overall.mcnemar.p_value


def test_every_format_marks_too_few_stories_and_says_how_p_was_adjusted(tmp_path: Path) -> None:
    # Given the hand-answered run: domains of one and two stories
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    with sessions() as session:
        report = run_report(session, run_id)
    note = "No domain has 5 stories or more: no per-domain p-value is shown."
    markdown = render_markdown(report.summary)
    assert markdown.count(f"| {TOO_FEW_STORIES} |") == 2 and note in markdown
    html = render_html(report)
    assert html.count(f"<span class='badge'>{TOO_FEW_STORIES}</span>") == 2 and note in html
    console = Console(width=200, record=True)
    console.print(render_table(report.summary))
    table = console.export_text()
    assert table.count(TOO_FEW_STORIES) >= 2 and note in table
    comparison = json.loads(json.dumps(report_json(report)))["comparison"]["finetuned"]
    assert comparison["method"]["holm_domains"] == 0
    for domain in comparison["domains"].values():
        assert domain["too_few_stories"] is True
        assert domain["f1"]["significant"] is False and domain["f1"]["p_holm"] is None
    assert "too_few_stories" not in comparison["overall"]


def test_the_note_names_the_family_size() -> None:
    comparison = compare_models(_domains_run(), "base", "tuned", seed=1)
    assert holm_note(comparison) == (
        "Per-domain p-values Holm-adjusted over 2 domains (those with 5 stories or more), and "
        "significance judged on them; the overall row is not adjusted."
    )
