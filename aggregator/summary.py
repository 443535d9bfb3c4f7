"""A run's state and scores in one JSON-ready object: what status, report and --json print."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from evalfleet.aggregator.aggregate import OVERALL, DomainScore, compute_scores
from evalfleet.aggregator.paired import PairedComparison, compare_all, comparison_to_json
from evalfleet.aggregator.scored import ScoredTurn, load_scored_turns
from evalfleet.aggregator.verdict import verdict
from evalfleet.schema.accounting import Usage, usage_by_label
from evalfleet.schema.errors import RunNotFoundError
from evalfleet.schema.models import Item, Result, Run, RunState, as_utc, utcnow
from evalfleet.schema.payloads import RunConfig

FAILURES_SHOWN = 20


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise RunNotFoundError(f"no run with id {run_id}")
    return run


def run_summary(session: Session, run_id: int) -> dict[str, Any]:
    """Stored results once the run is done; a live computation from the answers before.

    `comparison` holds the paired statistics of every model against the first one.
    """
    run = get_run(session, run_id)
    turns = load_scored_turns(session, run_id)
    return summarize_run(session, run, turns, compare_all(turns))


def summarize_run(
    session: Session,
    run: Run,
    turns: list[ScoredTurn],
    comparisons: list[PairedComparison],
) -> dict[str, Any]:
    """The summary of a run from its already loaded turns and comparisons."""
    run_id = run.id
    config = RunConfig.model_validate(run.config)
    stored = stored_scores(session, run_id) if run.state == RunState.DONE.value else []
    scores = stored or compute_scores(turns)
    usage = usage_by_label(session, run_id, config.models, config.prices)
    by_label = {
        label: model_entry(model, label, scores, usage[label])
        for label, model in config.models.items()
    }
    items = Counter(
        state for (state,) in session.execute(select(Item.state).where(Item.run_id == run_id))
    )
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
        "progress": progress_json(run, by_label, usage),
        "models": by_label,
        **failures_json(turns),
        "comparison": comparisons_json(comparisons),
    }


def model_entry(model: str, label: str, scores: list[DomainScore], usage: Usage) -> dict[str, Any]:
    """One model's entry of `models`: overall scores, tokens and cost, scores per domain."""
    overall = next(s for s in scores if s.label == label and s.domain == OVERALL)
    return {
        "model": model,
        **_score_fields(overall),
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cost_usd": usage.cost_usd,
        "api_calls": usage.api_calls,
        "rate_limited": usage.rate_limited,
        "domains": {
            s.domain: _score_fields(s) for s in scores if s.label == label and s.domain != OVERALL
        },
    }


def progress_json(
    run: Run, models: dict[str, dict[str, Any]], usage: dict[str, Usage]
) -> dict[str, Any]:
    """Live figures for `status`: rates since the run began, and time to go at that rate."""
    end = as_utc(run.finished_at) if run.finished_at else utcnow()
    elapsed = max(1e-3, (end - as_utc(run.created_at)).total_seconds())
    total = sum(m["questions"] for m in models.values())
    settled = sum(m["answered"] + m["failed"] for m in models.values())
    calls = sum(u.api_calls for u in usage.values())
    limited = sum(u.rate_limited for u in usage.values())
    costs = [u.cost_usd for u in usage.values()]
    per_s = settled / elapsed
    return {
        "answered": f"{settled}/{total}",
        "elapsed_s": round(elapsed, 1),
        "answers_per_s": round(per_s, 2),
        "requests_per_s": round(calls / elapsed, 2),
        "api_calls": calls,
        "share_429": round(limited / calls, 4) if calls else 0.0,
        "eta_s": round((total - settled) / per_s, 1) if per_s > 0 and total > settled else 0.0,
        "cost_usd": None
        if any(c is None for c in costs)
        else round(sum(c or 0.0 for c in costs), 6),
    }


def failures_json(turns: list[ScoredTurn]) -> dict[str, Any]:
    """The first failed questions with their errors, and how many failed in all."""
    failures = [t for t in turns if t.answer is None and t.error is not None]
    return {
        "failures": [
            {"model": t.label, "story": t.story_key, "turn": t.turn, "error": t.error}
            for t in failures[:FAILURES_SHOWN]
        ],
        "failures_total": len(failures),
    }


def comparisons_json(comparisons: list[PairedComparison]) -> dict[str, Any]:
    """Keyed by the compared (other) label; each with its verdict line."""
    return {c.other: {"verdict": verdict(c).line, **comparison_to_json(c)} for c in comparisons}


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
