"""One model of one run against one model of another run over the same data (two checkpoints,
two prompts): questions matched on (story key, turn), then the same paired comparison."""

from __future__ import annotations

import dataclasses

from sqlalchemy.orm import Session

from evalfleet.aggregator.aggregate import compute_scores
from evalfleet.aggregator.agreement import compute_agreement
from evalfleet.aggregator.answerability import answerability_scores
from evalfleet.aggregator.judge_summary import JudgeSummary
from evalfleet.aggregator.paired import compare_models
from evalfleet.aggregator.report_data import ReportData, build_report, load_story_texts
from evalfleet.aggregator.samples import per_question_means
from evalfleet.aggregator.scored import ScoredTurn, load_scored_turns
from evalfleet.aggregator.summary import dataset_info, failed_questions, get_run, model_summary
from evalfleet.aggregator.summary_types import CrossRunSummary, RunSide
from evalfleet.aggregator.truncation import truncation_by_label
from evalfleet.schema.accounting import Usage
from evalfleet.schema.errors import EvalfleetError
from evalfleet.schema.models import Run
from evalfleet.schema.payloads import RunConfig

__all__ = ["IncomparableRunsError", "compare_runs", "side_label"]


class IncomparableRunsError(EvalfleetError):
    """Two runs cannot be compared: different data, different questions, or an unknown label."""


def side_label(label: str, run_id: int) -> str:
    """How a model of one run is named in a cross-run report."""
    return f"{label} (run {run_id})"


def _label(run: Run, label: str | None) -> tuple[str, str]:
    """The chosen label (default: the run's first model) and its model name."""
    models = RunConfig.model_validate(run.config).models
    chosen = label if label is not None else next(iter(models))
    if chosen not in models:
        raise IncomparableRunsError(
            f"run {run.id} has no model labelled '{chosen}' (its labels: {', '.join(models)})"
        )
    return chosen, models[chosen]


def _check_same_data(run_a: Run, run_b: Run, keys_a: set[tuple[str, int]],
                     keys_b: set[tuple[str, int]]) -> None:  # fmt: skip
    if run_a.dataset_fingerprint != run_b.dataset_fingerprint:
        raise IncomparableRunsError(
            f"runs {run_a.id} and {run_b.id} were made on different data "
            f"({run_a.dataset_name} {run_a.dataset_split}, fingerprint "
            f"{run_a.dataset_fingerprint[:12]}; {run_b.dataset_name} {run_b.dataset_split}, "
            f"fingerprint {run_b.dataset_fingerprint[:12]}): a paired comparison needs the same "
            "questions"
        )
    if keys_a != keys_b:
        raise IncomparableRunsError(
            f"runs {run_a.id} and {run_b.id} do not hold the same questions: "
            f"{len(keys_a - keys_b)} only in run {run_a.id}, {len(keys_b - keys_a)} only in "
            f"run {run_b.id}"
        )


def compare_runs(
    session: Session, run_a: int, run_b: int, label_a: str | None = None,
    label_b: str | None = None,
) -> ReportData:  # fmt: skip
    """`label_b` of run B against `label_a` of run A (the reference); defaults: each run's first
    model. Refuses runs made on different data or questions."""
    run_1, run_2 = get_run(session, run_a), get_run(session, run_b)
    (chosen_a, model_a), (chosen_b, model_b) = _label(run_1, label_a), _label(run_2, label_b)
    if (run_a, chosen_a) == (run_b, chosen_b):
        raise IncomparableRunsError(
            f"both sides are '{chosen_a}' of run {run_a}: choose another run or --label-b"
        )
    # One turn per question (the mean of its samples, aggregator/samples.py) on each side.
    turns_a = [
        t for t in per_question_means(load_scored_turns(session, run_a)) if t.label == chosen_a
    ]
    turns_b = [
        t for t in per_question_means(load_scored_turns(session, run_b)) if t.label == chosen_b
    ]
    keys_a = {(t.story_key, t.turn) for t in turns_a}
    _check_same_data(run_1, run_2, keys_a, {(t.story_key, t.turn) for t in turns_b})
    name_a, name_b = side_label(chosen_a, run_a), side_label(chosen_b, run_b)
    story_ids = {t.story_key: t.story_id for t in turns_a}
    # One merged "run": run B's story ids mapped onto run A's, so scoring finds the pairs.
    turns: list[ScoredTurn] = [dataclasses.replace(t, label=name_a) for t in turns_a] + [
        dataclasses.replace(t, label=name_b, story_id=story_ids[t.story_key]) for t in turns_b
    ]
    judge = _same_judge(run_1, run_2)
    if judge is None:  # grades of two different judges (or of one side only) do not pair
        turns = [_ungraded(t) for t in turns]
    comparison = compare_models(turns, name_a, name_b)
    scores = compute_scores(turns)
    split = answerability_scores(turns)
    # Each side's answers cut at its own run's max_tokens.
    cut = {
        name_a: truncation_by_label(turns_a, _max_tokens(run_1), [chosen_a])[chosen_a],
        name_b: truncation_by_label(turns_b, _max_tokens(run_2), [chosen_b])[chosen_b],
    }
    failures, failures_total = failed_questions(turns)
    summary = CrossRunSummary(
        runs=(
            RunSide(run_a, chosen_a, model_a, name_a, run_1.state),
            RunSide(run_b, chosen_b, model_b, name_b, run_2.state),
        ),
        state=run_1.state if run_1.state == run_2.state else f"{run_1.state}/{run_2.state}",
        error=None,
        dataset=dataset_info(run_1),
        history=_history(run_1, run_2),
        models={
            name: model_summary(
                model,
                name,
                scores,
                _usage(turns, name),
                split.get(name),
                cut[name],
                judge is not None,
            )
            for name, model in ((name_a, model_a), (name_b, model_b))
        },
        failures=failures,
        failures_total=failures_total,
        comparisons=(comparison,),
        judge=None if judge is None else JudgeSummary(judge, None, compute_agreement(turns)),
    )
    stories = load_story_texts(session, run_a)
    title = f"evalfleet: run {run_b} against run {run_a}"
    return build_report(title, summary, turns, stories)


def _same_judge(run_a: Run, run_b: Run) -> str | None:
    """The judge model both runs were graded by; None when they were not graded by one."""
    a = RunConfig.model_validate(run_a.config).judge
    b = RunConfig.model_validate(run_b.config).judge
    return a.model if a is not None and b is not None and a.model == b.model else None


def _ungraded(turn: ScoredTurn) -> ScoredTurn:
    return dataclasses.replace(
        turn, judge=None, verdict=None, judge_reason=None, judged_by_rule=False, judge_error=None
    )


def _history(run_a: Run, run_b: Run) -> str:
    a = RunConfig.model_validate(run_a.config).history.value
    b = RunConfig.model_validate(run_b.config).history.value
    return a if a == b else f"{a}/{b}"


def _max_tokens(run: Run) -> int:
    return RunConfig.model_validate(run.config).max_tokens


def _usage(turns: list[ScoredTurn], label: str) -> Usage:
    """Tokens from the compared answers; calls and cost belong to each run's own report."""
    mine = [t for t in turns if t.label == label]
    return Usage(
        prompt_tokens=sum(t.prompt_tokens or 0 for t in mine),
        completion_tokens=sum(t.completion_tokens or 0 for t in mine),
        cost_usd=None,
        api_calls=0,
        rate_limited=0,
    )
