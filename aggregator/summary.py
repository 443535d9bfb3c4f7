"""A run's state and scores in one JSON-ready object: what status, report and --json print."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aggregator.aggregate import OVERALL, DomainScore, compute_scores
from aggregator.scored import load_scored_turns
from schema.errors import RunNotFoundError
from schema.models import Answer, Item, Result, Run, RunState
from schema.payloads import RunConfig

FAILURES_SHOWN = 20


def run_summary(session: Session, run_id: int) -> dict[str, Any]:
    """Stored results once the run is done; a live computation from the answers before."""
    run = session.get(Run, run_id)
    if run is None:
        raise RunNotFoundError(f"no run with id {run_id}")
    config = RunConfig.model_validate(run.config)
    turns = load_scored_turns(session, run_id)
    scores = compute_scores(turns)
    if run.state == RunState.DONE.value:
        scores = stored_scores(session, run_id) or scores
    by_label: dict[str, dict[str, Any]] = {}
    for label, model in config.models.items():
        overall = next(s for s in scores if s.label == label and s.domain == OVERALL)
        tokens = session.execute(
            select(func.sum(Answer.prompt_tokens), func.sum(Answer.completion_tokens)).where(
                Answer.run_id == run_id, Answer.model_label == label
            )
        ).one()
        by_label[label] = {
            "model": model,
            **_score_fields(overall),
            "prompt_tokens": int(tokens[0] or 0),
            "completion_tokens": int(tokens[1] or 0),
            "domains": {
                s.domain: _score_fields(s)
                for s in scores
                if s.label == label and s.domain != OVERALL
            },
        }
    items = Counter(
        state for (state,) in session.execute(select(Item.state).where(Item.run_id == run_id))
    )
    failures = [t for t in turns if t.answer is None and t.error is not None]
    return {
        "run_id": run.id,
        "state": run.state,
        "error": run.error,
        "dataset": {
            "name": run.dataset_name,
            "split": run.dataset_split,
            "fingerprint": run.dataset_fingerprint,
        },
        "history": config.history.value,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "items": dict(sorted(items.items())),
        "models": by_label,
        "failures": [
            {"model": t.label, "story": t.story_key, "turn": t.turn, "error": t.error}
            for t in failures[:FAILURES_SHOWN]
        ],
        "failures_total": len(failures),
    }


def stored_scores(session: Session, run_id: int) -> list[DomainScore]:
    return [
        DomainScore(
            label=r.model_label,
            domain=r.domain,
            questions=r.questions,
            answered=r.answered,
            failed=r.failed,
            scored=r.scored,
            em=r.em,
            f1=r.f1,
        )
        for r in session.scalars(select(Result).where(Result.run_id == run_id))
    ]


def _score_fields(score: DomainScore) -> dict[str, Any]:
    return {
        "questions": score.questions,
        "answered": score.answered,
        "failed": score.failed,
        "scored": score.scored,
        "em": score.em,
        "f1": score.f1,
    }
