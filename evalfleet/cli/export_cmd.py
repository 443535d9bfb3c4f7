"""`evalfleet export RUN_ID`: every answer as JSON Lines, with its score."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from evalfleet.aggregator.scored import ScoredTurn, load_scored_turns
from evalfleet.cli.options import load_settings
from evalfleet.schema.errors import RunNotFoundError
from evalfleet.schema.models import Run
from evalfleet.schema.payloads import RunConfig
from evalfleet.services import open_database


def export_record(turn: ScoredTurn, judged: bool = False) -> dict[str, Any]:
    """One answer; `judged` (the run has a judge) adds the judge's grade and reason."""
    record = {
        "story": turn.story_key,
        "source": turn.source,
        "turn": turn.turn,
        "sample": turn.sample,
        "model": turn.model,
        "label": turn.label,
        "question": turn.question,
        "answer": turn.answer,
        "references": list(turn.references),
        "em": turn.em,
        "f1": turn.f1,
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": turn.completion_tokens,
        "latency_ms": turn.latency_ms,
        "finish_reason": turn.finish_reason,
        "error": turn.error,
    }
    if judged:
        record |= {
            "judge": turn.judge, "verdict": turn.verdict, "judge_reason": turn.judge_reason,
            "judged_by_rule": turn.judged_by_rule, "judge_error": turn.judge_error,
        }  # fmt: skip
    return record


@click.command()
@click.argument("run_id", type=int)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
def export(run_id: int, out: Path | None) -> None:
    """One JSON object per (model, question, sample): answer, references, EM/F1 (0-1), tokens,
    error.

    Each record's finish_reason is the endpoint's: "length" marks an answer cut at --max-tokens.
    With a judge, each also holds its grade (judge 1/0, verdict, judge_reason, judged_by_rule).
    """
    sessions = open_database(load_settings())
    with sessions() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise RunNotFoundError(f"no run with id {run_id}")
        judged = RunConfig.model_validate(run.config).judge is not None
        turns = load_scored_turns(session, run_id)
    handle = out.open("w", encoding="utf-8") if out else sys.stdout
    try:
        for turn in turns:
            handle.write(json.dumps(export_record(turn, judged), ensure_ascii=False) + "\n")
    finally:
        if out:
            handle.close()
