"""The aggregation stores its analysis; a report of a done run reads it back and shows exactly
what the computation from the answers shows, in every format."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from sqlalchemy import update
from sqlalchemy.orm import Session
from unit.aggregator.simulated_run import database, three_story_run

from evalfleet.aggregator.analysis import compute_analysis, load_analysis, load_story_texts
from evalfleet.aggregator.html_report import render_html
from evalfleet.aggregator.markdown_report import markdown_report
from evalfleet.aggregator.render import render_table
from evalfleet.aggregator.report_data import ReportData, report_json, run_report
from evalfleet.aggregator.scored import load_scored_turns
from evalfleet.aggregator.summary import get_run, summarize_run
from evalfleet.schema.models import StoredAnalysis


def _computed(session: Session, run_id: int) -> ReportData:
    """The report as computed from the loaded answers (what every report did before)."""
    turns = load_scored_turns(session, run_id)
    analysis = compute_analysis(turns, load_story_texts(session, run_id))
    summary = summarize_run(session, get_run(session, run_id), turns, analysis)
    return ReportData(f"evalfleet run {run_id}", summary, analysis.diagnostics)


def _table(report: ReportData) -> str:
    console = Console(width=120, file=io.StringIO())
    console.print(render_table(report.summary))
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_the_stored_analysis_reads_back_equal_to_the_computed_one(tmp_path: Path) -> None:
    # Given a finished run, aggregated
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    with sessions() as session:
        # When its stored analysis is read back
        stored = load_analysis(session, run_id)
        turns = load_scored_turns(session, run_id)
        computed = compute_analysis(turns, load_story_texts(session, run_id))
    # Then it is the analysis the answers give, value for value
    assert stored == computed
    assert stored is not None and stored.comparisons[0].overall is not None


def test_every_format_from_the_stored_analysis_is_the_computed_report(tmp_path: Path) -> None:
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    with sessions() as session:
        stored, computed = run_report(session, run_id), _computed(session, run_id)
    assert report_json(stored) == report_json(computed)
    assert _table(stored) == _table(computed)
    assert markdown_report(stored, "r_files").text == markdown_report(computed, "r_files").text
    assert render_html(stored) == render_html(computed)


def test_an_analysis_of_another_version_is_ignored_and_computed_again(tmp_path: Path) -> None:
    # Given a run whose stored analysis has a format this evalfleet does not know
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    with sessions.begin() as session:
        session.execute(update(StoredAnalysis).values(version=0, document="{}"))
    # When it is reported
    with sessions() as session:
        assert load_analysis(session, run_id) is None
        report = run_report(session, run_id)
        expected = _computed(session, run_id)
    # Then the report is computed from the answers, as before
    assert report_json(report) == report_json(expected)
