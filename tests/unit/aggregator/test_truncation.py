"""Answers cut by max_tokens (finish_reason "length"): counted per model, warned about above 2%."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, three_story_run

from evalfleet.aggregator.cross_run import compare_runs
from evalfleet.aggregator.scored import ScoredTurn
from evalfleet.aggregator.summary import run_summary
from evalfleet.aggregator.truncation import (
    Truncation,
    truncation_by_label,
    truncation_line,
    truncation_warnings,
)
from evalfleet.schema.models import Answer, Run


def _turn(label: str, answer: str | None, finish_reason: str | None) -> ScoredTurn:
    return ScoredTurn(
        label=label, model=f"m/{label}", story_key="s", story_id=1, source="cnn", turn=1,
        question="q?", references=("a",), answer=answer, error=None if answer else "failed",
        em=None, f1=None, prompt_tokens=None, completion_tokens=None, latency_ms=None,
        finish_reason=finish_reason,
    )  # fmt: skip


def test_only_answers_finished_by_length_count_as_cut() -> None:
    turns = [
        _turn("base", "a long answer", "length"),
        _turn("base", "a", "stop"),
        _turn("base", "", "stop"),  # an empty answer is an answer, not a cut one
        _turn("base", None, None),  # failed: not answered, not cut
        _turn("tuned", "a", None),  # an endpoint that sends no finish_reason
    ]
    cut = truncation_by_label(turns, 128, ["base", "tuned", "idle"])
    assert cut["base"] == Truncation(answered=3, truncated=1, max_tokens=128)
    assert cut["tuned"] == Truncation(answered=1, truncated=0, max_tokens=128)
    assert cut["idle"] == Truncation(answered=0, truncated=0, max_tokens=128)
    assert (cut["base"].share, cut["idle"].share) == (0.3333, 0.0)
    assert cut["base"].to_json() == {"truncated": 1, "truncated_share": 0.3333}


def test_more_than_two_percent_cut_warns_and_names_twice_the_max_tokens() -> None:
    # Given one model with 2 of 100 answers cut (2%: fine) and one with 3 of 100 (3%: too many)
    fine = Truncation(answered=100, truncated=2, max_tokens=64)
    many = Truncation(answered=100, truncated=3, max_tokens=64)
    # Then only the second is warned about, with the --max-tokens to try
    assert not fine.too_many and many.too_many
    (warning,) = truncation_warnings({"base": fine, "tuned": many})
    assert warning == (
        "warning: tuned: 3 of 100 answers (3.0%) were cut at max_tokens 64 and are scored as "
        "cut; try --max-tokens 128"
    )
    assert truncation_line({"base": fine, "tuned": many}) == (
        'answers cut by max_tokens (finish_reason "length"): base 2 of 100 (2.0%), '
        "tuned 3 of 100 (3.0%)"
    )
    assert truncation_warnings({"none": Truncation()}) == []


def _cut_base_answers(sessions: sessionmaker[Session], run_id: int, turns: int) -> None:
    """Every answer finished by "stop", but base's answers to the first `turns` questions of
    each story, cut at max_tokens."""
    with sessions.begin() as session:
        session.execute(update(Answer).where(Answer.run_id == run_id).values(finish_reason="stop"))
        session.execute(
            update(Answer)
            .where(Answer.run_id == run_id, Answer.model_label == "base", Answer.turn <= turns)
            .where(Answer.text.is_not(None))
            .values(finish_reason="length")
        )


def test_the_summary_counts_each_models_cut_answers_and_warns(tmp_path: Path) -> None:
    # Given a finished run whose base answers to every first question (3 of its 5) were cut
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    _cut_base_answers(sessions, run_id, turns=1)
    # When summarized
    with sessions() as session:
        summary = run_summary(session, run_id)
    document = summary.to_json()
    # Then the JSON holds each model's count and share, and the warning with the run's budget
    assert document["models"]["base"]["truncated"] == 3
    assert document["models"]["base"]["truncated_share"] == 0.6
    assert document["models"]["finetuned"]["truncated"] == 0
    assert document["warnings"] == [
        "warning: base: 3 of 5 answers (60.0%) were cut at max_tokens 128 and are scored as "
        "cut; try --max-tokens 256"
    ]
    assert summary.warnings == document["warnings"]


def test_a_cross_run_comparison_counts_each_side_at_its_own_max_tokens(tmp_path: Path) -> None:
    # Given two runs of the same data, the first run's max_tokens 32, its base answers cut
    _, sessions = database(tmp_path)
    first, second = three_story_run(sessions), three_story_run(sessions)
    _cut_base_answers(sessions, first, turns=2)
    with sessions.begin() as session:
        run = session.get_one(Run, first)
        session.execute(
            update(Run).where(Run.id == first).values(config={**run.config, "max_tokens": 32})
        )
    # When run 2's base is compared with run 1's
    with sessions() as session:
        summary = compare_runs(session, first, second, None, None).summary
    # Then each side has its own count, and the warning names run 1's budget doubled
    models = summary.to_json()["models"]
    assert models[f"base (run {first})"]["truncated"] == 5
    assert models[f"base (run {second})"]["truncated"] == 0
    (warning,) = summary.warnings
    assert warning.startswith(f"warning: base (run {first}): 5 of 5 answers (100.0%)")
    assert warning.endswith("cut at max_tokens 32 and are scored as cut; try --max-tokens 64")
