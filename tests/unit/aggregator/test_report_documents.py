"""The report documents built from a stored run: summary, JSON, HTML and Markdown."""

from __future__ import annotations

import re
from pathlib import Path

from unit.aggregator.simulated_run import MARKUP_QUESTION, database, three_story_run

from evalfleet.aggregator.html_report import render_html
from evalfleet.aggregator.markdown_report import markdown_report, md_text
from evalfleet.aggregator.report_data import report_json, run_report
from evalfleet.aggregator.summary import run_summary


def test_the_summary_keeps_its_keys_and_adds_the_paired_comparison(tmp_path: Path) -> None:
    # Given a finished run of two models, one question failed for base
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    # When summarized
    with sessions() as session:
        summary = run_summary(session, run_id).to_json()
    # Then the known keys are all there, and the comparison of finetuned against base
    assert set(summary) >= {
        "run_id", "state", "error", "dataset", "history", "created_at", "finished_at", "items",
        "models", "failures", "failures_total", "comparison",
    }  # fmt: skip
    comparison = summary["comparison"]["finetuned"]
    assert comparison["reference"] == "base" and comparison["left_out"] == 1
    assert comparison["overall"]["questions"] == 5 and comparison["overall"]["stories"] == 3
    assert set(comparison["domains"]) == {"cnn", "mctest"}
    assert comparison["verdict"].startswith(("finetuned beats base", "no detectable difference"))
    # And its means are the summary's scores on the same questions
    assert comparison["overall"]["f1"]["other"] == summary["models"]["finetuned"]["f1"]


def test_the_json_report_adds_diagnostics_to_the_summary(tmp_path: Path) -> None:
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    with sessions() as session:
        document = report_json(run_report(session, run_id))
    diagnostics = document["diagnostics"]
    assert diagnostics["scored_questions"] == 5
    assert set(diagnostics["models"]) == {"base", "finetuned"}
    changes = diagnostics["changes"]["finetuned"]
    assert changes["fixed_total"] >= 2
    assert {"question", "references", "excerpt", "reference_answer", "other_answer"} <= set(
        changes["fixed"][0]
    )


def test_the_html_report_is_one_self_contained_file_that_shows_markup_as_text(
    tmp_path: Path,
) -> None:
    # Given a run whose question holds a script tag
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    with sessions() as session:
        report = run_report(session, run_id)
    # When rendered as HTML
    page = render_html(report)
    # Then the question is escaped text: no script element anywhere
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; Who is &lt;b&gt;Cotton" in page
    # And nothing is fetched from elsewhere: no external source, link or stylesheet
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and not re.search(r"""url\(\s*["']?(https?:)?//""", page)
    # And it holds the verdict and inline SVG plots
    assert 'class="verdict' in page and "finetuned" in page
    assert page.count("<svg") >= 4


def test_the_markdown_report_links_its_plots_and_escapes_user_text(tmp_path: Path) -> None:
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    with sessions() as session:
        report = run_report(session, run_id)
    markdown = markdown_report(report, "report_files")
    # Then every plot is a PNG linked from the text
    assert markdown.images
    for path, png in markdown.images.items():
        assert path.startswith("report_files/") and png.startswith(b"\x89PNG\r\n\x1a\n")
        assert f"]({path})" in markdown.text
    # And user text is shown verbatim, never as markup
    assert md_text(MARKUP_QUESTION) in markdown.text
    assert "<script>" not in markdown.text
    assert md_text("a | b *c*") == r"a \| b \*c\*"
