"""Everything a report shows, gathered once: summary, paired comparisons, diagnostics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from evalfleet.aggregator.analysis import compute_analysis, load_story_texts
from evalfleet.aggregator.diagnostics import Diagnostics, compute_diagnostics, diagnostics_to_json
from evalfleet.aggregator.paired import PairedComparison
from evalfleet.aggregator.scored import ScoredTurn, load_scored_turns
from evalfleet.aggregator.summary import counted_summary, get_run, stored_analysis, summarize_run
from evalfleet.aggregator.summary_types import Summary

__all__ = ["ReportData", "build_report", "load_story_texts", "report_json", "run_report"]


@dataclass(frozen=True)
class ReportData:
    """What every report format renders: the summary (with its paired comparisons) and the
    diagnostics. Built once per command, whatever the number of formats written from it."""

    title: str
    summary: Summary
    diagnostics: Diagnostics

    @property
    def comparisons(self) -> tuple[PairedComparison, ...]:
        return self.summary.comparisons


def build_report(
    title: str,
    summary: Summary,
    turns: Sequence[ScoredTurn],
    stories: dict[str, str],
) -> ReportData:
    return ReportData(title=title, summary=summary, diagnostics=compute_diagnostics(turns, stories))


def run_report(session: Session, run_id: int) -> ReportData:
    """The full report of one run: a done run's stored analysis with its counts read from
    SQL; otherwise one load of the answers and one computation (docs/architecture.md,
    "Reports at scale")."""
    run = get_run(session, run_id)
    title = f"evalfleet run {run_id}"
    stored = stored_analysis(session, run)
    if stored is not None:
        scores, analysis = stored
        return ReportData(
            title, counted_summary(session, run, scores, analysis), analysis.diagnostics
        )
    turns = load_scored_turns(session, run_id)
    computed = compute_analysis(turns, load_story_texts(session, run_id))
    return ReportData(title, summarize_run(session, run, turns, computed), computed.diagnostics)


def report_json(report: ReportData) -> dict[str, Any]:
    """The machine form: the summary (with `comparison`) plus `diagnostics`."""
    return {**report.summary.to_json(), "diagnostics": diagnostics_to_json(report.diagnostics)}
