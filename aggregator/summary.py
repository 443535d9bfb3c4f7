"""A run's state and scores as one typed summary: what status, report and --json show.

Counts come from SQL aggregates (aggregator/run_counts.py); scores, the comparisons and the
HasAns/NoAns split as the aggregation stored them once the run is done. `status` never loads
an answer: while a run is going it shows counts only; `report` scores a running run from its
answers (docs/architecture.md, "Reports at scale").
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from evalfleet.aggregator.aggregate import OVERALL, DomainScore, compute_scores
from evalfleet.aggregator.agreement import ModelAgreement
from evalfleet.aggregator.analysis import Analysis, load_analysis
from evalfleet.aggregator.judge_summary import JudgeSummary
from evalfleet.aggregator.paired import PairedComparison
from evalfleet.aggregator.run_counts import (
    FAILURES_SHOWN,
    counted_scores,
    item_states,
    truncations,
)
from evalfleet.aggregator.run_counts import failed_questions as counted_failures
from evalfleet.aggregator.samples import SamplingNoise, per_question_means
from evalfleet.aggregator.scored import ScoredTurn
from evalfleet.aggregator.summary_types import (
    DatasetInfo,
    FailedQuestion,
    ModelSummary,
    Progress,
    RunSummary,
)
from evalfleet.aggregator.truncation import Truncation, truncation_by_label
from evalfleet.schema.accounting import Usage, judge_usage, usage_by_label
from evalfleet.schema.errors import RunNotFoundError
from evalfleet.schema.models import Answer, Result, Run, RunState, as_utc, utcnow
from evalfleet.schema.payloads import RunConfig

__all__ = [
    "FAILURES_SHOWN",
    "counted_summary",
    "dataset_info",
    "failed_questions",
    "get_run",
    "model_summary",
    "progress",
    "run_summary",
    "stored_analysis",
    "stored_scores",
    "summarize_run",
]


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise RunNotFoundError(f"no run with id {run_id}")
    return run


def stored_analysis(session: Session, run: Run) -> tuple[list[DomainScore], Analysis] | None:
    """The scores and analysis the aggregation stored; None unless the run is done and has
    both (one aggregated by an older evalfleet has no analysis)."""
    if run.state != RunState.DONE.value:
        return None
    scores = stored_scores(session, run.id)
    analysis = load_analysis(session, run.id) if scores else None
    return None if analysis is None else (scores, analysis)


def run_summary(session: Session, run_id: int) -> RunSummary:
    """Counts from SQL, with the stored scores and analysis once the run is done.

    `comparisons` holds the paired statistics of every model against the first one. A done
    run without a stored analysis (aggregated by an older evalfleet) is computed as before.
    """
    run = get_run(session, run_id)
    config = RunConfig.model_validate(run.config)
    stored = stored_analysis(session, run)
    if stored is not None:
        return counted_summary(session, run, *stored)
    if run.state == RunState.DONE.value:
        from evalfleet.aggregator.report_data import run_report  # the old run's one computation

        summary = run_report(session, run_id).summary
        assert isinstance(summary, RunSummary)
        return summary
    return counted_summary(session, run, counted_scores(session, run.id, list(config.models)))


def counted_summary(
    session: Session, run: Run, scores: list[DomainScore], analysis: Analysis | None = None
) -> RunSummary:
    """The summary from SQL counts: `scores` stored (a done run) or counted (no EM/F1 yet),
    the comparisons and HasAns/NoAns split from `analysis` (none while the run is going)."""
    config = RunConfig.model_validate(run.config)
    labels = list(config.models)
    cut = truncations(session, run.id, labels, config.max_tokens)
    split = analysis.answerability if analysis else {}
    failed = {s.label: s.failed for s in scores if s.domain == OVERALL}
    failures, total = counted_failures(
        session, run.id, {label: failed.get(label, 0) for label in labels}
    )
    return _summary(
        session, run, config, scores, cut, split, (failures, total),
        analysis.comparisons if analysis else (), analysis.judge if analysis else (),
        analysis.sampling_noise if analysis else (),
    )  # fmt: skip


def summarize_run(
    session: Session, run: Run, turns: list[ScoredTurn], analysis: Analysis
) -> RunSummary:
    """The summary of a run from its already loaded turns (every sample: answers cut at
    max_tokens are counted per answer, failures per question) and computed analysis."""
    config = RunConfig.model_validate(run.config)
    stored = stored_scores(session, run.id) if run.state == RunState.DONE.value else []
    scores = stored or compute_scores(turns)
    cut = truncation_by_label(turns, config.max_tokens, config.models)
    failures = failed_questions(per_question_means(turns))
    return _summary(
        session, run, config, scores, cut, analysis.answerability, failures,
        analysis.comparisons, analysis.judge, analysis.sampling_noise,
    )  # fmt: skip


def _summary(
    session: Session,
    run: Run,
    config: RunConfig,
    scores: list[DomainScore],
    cut: Mapping[str, Truncation],
    split: Mapping[str, Mapping[str, DomainScore]],
    failures: tuple[tuple[FailedQuestion, ...], int],
    comparisons: tuple[PairedComparison, ...],
    agreement: tuple[ModelAgreement, ...],
    noise: tuple[SamplingNoise, ...] = (),
) -> RunSummary:
    usage = usage_by_label(session, run.id, config.models, config.prices)
    judging = judge_usage(session, run.id, config)
    judge = None if config.judge is None else JudgeSummary(config.judge.model, judging, agreement)
    by_label = {
        label: model_summary(
            model, label, scores, usage[label], split.get(label), cut[label], judge is not None
        )
        for label, model in config.models.items()
    }
    return RunSummary(
        run_id=run.id,
        state=run.state,
        error=run.error,
        dataset=dataset_info(run),
        history=config.history.value,
        created_at=run.created_at,
        finished_at=run.finished_at,
        item_states=item_states(session, run.id),
        progress=progress(
            run,
            by_label,
            usage,
            judging.cost_usd if judging else 0.0,
            _sampled(session, run, config),
        ),
        models=by_label,
        failures=failures[0],
        failures_total=failures[1],
        comparisons=tuple(comparisons),
        sampling_noise=noise,
        judge=judge,
    )


def dataset_info(run: Run) -> DatasetInfo:
    return DatasetInfo(run.dataset_name, run.dataset_split, run.dataset_fingerprint)


def model_summary(
    model: str,
    label: str,
    scores: list[DomainScore],
    usage: Usage,
    answerability: Mapping[str, DomainScore] | None = None,
    truncation: Truncation | None = None,
    judged: bool = False,
) -> ModelSummary:
    """One model's overall scores, tokens and cost, scores per domain, its answers cut at
    max_tokens and, when the run has questions without an answer, its HasAns and NoAns
    scores."""
    return ModelSummary(
        model=model,
        overall=next(s for s in scores if s.label == label and s.domain == OVERALL),
        domains={s.domain: s for s in scores if s.label == label and s.domain != OVERALL},
        usage=usage,
        answerability=dict(answerability or {}),
        truncation=truncation or Truncation(),
        judged=judged,
    )


def progress(
    run: Run, models: Mapping[str, ModelSummary], usage: Mapping[str, Usage],
    judge_cost: float | None = 0.0, sampled: tuple[int, int] | None = None,
) -> Progress:  # fmt: skip
    """Live figures for `status`: rates since the run began, and time to go at that rate;
    the cost includes the judge's calls (`judge_cost`, None when the judge has no price).
    `sampled` (--samples K > 1): the answer rows written and K, for each question counts once
    in the scores but is asked K times: the rate and the time to go count answers then."""
    end = as_utc(run.finished_at) if run.finished_at else utcnow()
    elapsed = max(1e-3, (end - as_utc(run.created_at)).total_seconds())
    total = sum(m.overall.questions for m in models.values())
    settled = sum(m.overall.answered + m.overall.failed for m in models.values())
    if sampled is not None:
        settled, total = sampled[0], total * sampled[1]
    calls = sum(u.api_calls for u in usage.values())
    limited = sum(u.rate_limited for u in usage.values())
    costs = [*(u.cost_usd for u in usage.values()), judge_cost]
    per_s = settled / elapsed
    return Progress(
        settled=settled,
        questions=total,
        elapsed_s=round(elapsed, 1),
        answers_per_s=round(per_s, 2),
        requests_per_s=round(calls / elapsed, 2),
        api_calls=calls,
        share_429=round(limited / calls, 4) if calls else 0.0,
        eta_s=round((total - settled) / per_s, 1) if per_s > 0 and total > settled else 0.0,
        cost_usd=None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 6),
    )


def _sampled(session: Session, run: Run, config: RunConfig) -> tuple[int, int] | None:
    """The answer rows written so far and K, for a run asking each question K > 1 times."""
    if config.samples == 1:
        return None
    written = session.scalar(
        select(func.count()).select_from(Answer).where(Answer.run_id == run.id)
    )
    return int(written or 0), config.samples


def failed_questions(turns: list[ScoredTurn]) -> tuple[tuple[FailedQuestion, ...], int]:
    """The first failed questions with their errors, and how many failed in all."""
    failures = [
        FailedQuestion(t.label, t.story_key, t.turn, t.error)
        for t in turns
        if t.answer is None and t.error is not None
    ]
    return tuple(failures[:FAILURES_SHOWN]), len(failures)


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
            judge=r.judge,
        )
        for r in session.scalars(select(Result).where(Result.run_id == run_id))
    ]
