"""Everything a report shows, gathered once: summary, paired comparisons, diagnostics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evalfleet.aggregator.diagnostics import Diagnostics, compute_diagnostics, diagnostics_to_json
from evalfleet.aggregator.paired import PairedComparison, compare_all
from evalfleet.aggregator.scored import ScoredTurn, load_scored_turns
from evalfleet.aggregator.summary import get_run, summarize_run
from evalfleet.aggregator.summary_types import Summary
from evalfleet.schema.models import Story

__all__ = ["ReportData", "build_report", "load_story_texts", "report_json", "run_report"]


@dataclass(frozen=True)
class ReportData:
    """What every report format renders: the summary (with its paired comparisons) and the
    diagnostics."""

    title: str
    summary: Summary
    diagnostics: Diagnostics

    @property
    def comparisons(self) -> tuple[PairedComparison, ...]:
        return self.summary.comparisons


def load_story_texts(session: Session, run_id: int) -> dict[str, str]:
    """Story text by story key, for the excerpts of the fixed and broke lists."""
    rows = session.execute(select(Story.key, Story.text).where(Story.run_id == run_id))
    return {row.key: row.text for row in rows}


def build_report(
    title: str,
    summary: Summary,
    turns: Sequence[ScoredTurn],
    stories: dict[str, str],
) -> ReportData:
    return ReportData(title=title, summary=summary, diagnostics=compute_diagnostics(turns, stories))


def run_report(session: Session, run_id: int) -> ReportData:
    """The full report of one run."""
    run = get_run(session, run_id)
    turns = load_scored_turns(session, run_id)
    summary = summarize_run(session, run, turns, compare_all(turns))
    return build_report(
        f"evalfleet run {run_id}", summary, turns, load_story_texts(session, run_id)
    )


def report_json(report: ReportData) -> dict[str, Any]:
    """The machine form: the summary (with `comparison`) plus `diagnostics`."""
    return {**report.summary.to_json(), "diagnostics": diagnostics_to_json(report.diagnostics)}
