"""What every report of a run shows beyond counts, computed once and stored by the
aggregation: the paired comparisons, the HasAns/NoAns split and the diagnostics.

A report of a done run reads this document instead of loading, scoring and bootstrapping
every answer again (docs/architecture.md, "Reports at scale"); a running run, or one
aggregated before analyses were stored, gets the same values computed from its answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from evalfleet.aggregator.aggregate import DomainScore
from evalfleet.aggregator.agreement import ModelAgreement, compute_agreement
from evalfleet.aggregator.answerability import answerability_scores
from evalfleet.aggregator.diagnostics import Diagnostics, compute_diagnostics
from evalfleet.aggregator.paired import PairedComparison, compare_all
from evalfleet.aggregator.samples import SamplingNoise, per_question_means, sampling_noise
from evalfleet.aggregator.scored import ScoredTurn
from evalfleet.schema.db import upsert
from evalfleet.schema.models import StoredAnalysis, Story

__all__ = [
    "ANALYSIS_VERSION",
    "Analysis",
    "compute_analysis",
    "load_analysis",
    "load_story_texts",
    "store_analysis",
]

# Bumped whenever a stored field changes meaning or shape: an older document is ignored and
# the analysis computed from the answers instead.
ANALYSIS_VERSION = 3  # 2: samples' noise; 3: the judge metric (comparisons, agreement, lists)


@dataclass(frozen=True)
class Analysis:
    comparisons: tuple[PairedComparison, ...]  # every other model against the first
    answerability: dict[str, dict[str, DomainScore]]  # empty: every question has an answer
    diagnostics: Diagnostics
    sampling_noise: tuple[SamplingNoise, ...] = ()  # per model; empty when asked once
    judge: tuple[ModelAgreement, ...] = ()  # the judge's agreement with EM/F1; none without


# Floats go through JSON as their shortest repr, so a stored analysis reads back equal.
_DOCUMENT = TypeAdapter(Analysis)


def load_story_texts(session: Session, run_id: int) -> dict[str, str]:
    """Story text by story key, for the excerpts of the fixed and broke lists."""
    rows = session.execute(select(Story.key, Story.text).where(Story.run_id == run_id))
    return {row.key: row.text for row in rows}


def compute_analysis(turns: Sequence[ScoredTurn], stories: Mapping[str, str]) -> Analysis:
    """The one computation every report format renders (bootstrap included). `turns` may
    hold several samples per question: all is computed on their means (one turn per model
    and question), so the bootstrap resamples a story with all its samples."""
    noise = sampling_noise(turns)
    turns = per_question_means(turns)
    split = answerability_scores(turns)
    return Analysis(
        comparisons=tuple(compare_all(turns)),
        answerability={label: dict(groups) for label, groups in split.items()},
        diagnostics=compute_diagnostics(turns, stories),
        sampling_noise=noise,
        judge=compute_agreement(turns),
    )


def store_analysis(session: Session, run_id: int, analysis: Analysis) -> None:
    """Write (or replace: a retried run is aggregated again) the run's analysis."""
    row = {
        "run_id": run_id,
        "version": ANALYSIS_VERSION,
        "document": _DOCUMENT.dump_json(analysis).decode(),
    }
    upsert(session, StoredAnalysis.__table__, [row], ("run_id",), ("version", "document"))


def load_analysis(session: Session, run_id: int) -> Analysis | None:
    """The stored analysis of the run; None when there is none of this version."""
    document = session.scalar(
        select(StoredAnalysis.document).where(
            StoredAnalysis.run_id == run_id, StoredAnalysis.version == ANALYSIS_VERSION
        )
    )
    return None if document is None else _DOCUMENT.validate_json(document)
