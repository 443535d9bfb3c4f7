"""The judge in the CLI: `export` adds each answer's grade and reason, `plan` plans the judge's
accuracy and counts its calls; a run without a judge gets neither."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, three_story_run

from evalfleet.aggregator.planning import stories_needed
from evalfleet.cli.main import cli
from evalfleet.schema.models import Item, Judgement


@pytest.fixture
def folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("EVALFLEET_DATABASE_URL", "EVALFLEET_BROKER_URL", "TOGETHER_API_KEY",
                 "TOGETHER_BASE_URL", "EVALFLEET_PRICES"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _export(run_id: int) -> list[dict[str, object]]:
    result = CliRunner().invoke(cli, ["export", str(run_id)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_export_adds_the_judges_verdict_and_reason_to_each_answer(folder: Path) -> None:
    _, sessions = database(folder)
    run_id = three_story_run(sessions, judged=True)
    records = {(r["label"], r["story"], r["turn"]): r for r in _export(run_id)}
    wordy = records[("base", "s2", 1)]
    assert (wordy["em"], wordy["judge"], wordy["verdict"]) == (0.0, 1.0, "correct")
    assert wordy["judge_reason"] == "correct: reason for turn 1" and not wordy["judged_by_rule"]
    ruled = records[("base", "s1", 2)]
    assert ruled["judged_by_rule"] and ruled["judge"] == 1.0
    failed = records[("finetuned", "s3", 2)]
    assert failed["judge"] is None and failed["judge_error"] == "HTTP 500: judge down"


def test_export_of_a_run_without_a_judge_has_no_judge_fields(folder: Path) -> None:
    _, sessions = database(folder)
    run_id = three_story_run(sessions)
    assert not any("judge" in key or key == "verdict" for r in _export(run_id) for key in r)


def count_judge_calls_in_items(sessions: sessionmaker[Session], run_id: int) -> None:
    """As the workers count them: a grade's call is one of its item's api_calls."""
    with sessions.begin() as session:
        asked = session.execute(
            select(Judgement.model_label, Judgement.story_id, func.count())
            .where(Judgement.run_id == run_id, Judgement.by_rule.is_(False))
            .group_by(Judgement.model_label, Judgement.story_id)
        ).all()
        for label, story_id, calls in asked:
            session.execute(
                update(Item)
                .where(Item.run_id == run_id, Item.model_label == label, Item.story_id == story_id)
                .values(api_calls=Item.api_calls + calls)
            )


def test_plan_of_a_judged_pilot_plans_the_judge_accuracy_and_its_calls(folder: Path) -> None:
    _, sessions = database(folder)
    run_id = three_story_run(sessions, judged=True)
    count_judge_calls_in_items(sessions, run_id)
    result = CliRunner().invoke(cli, ["plan", "--from", str(run_id), "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    judge = plan["comparisons"]["finetuned"]["judge"]
    assert judge["pilot_questions"] == 5 and judge["pilot_difference"] == pytest.approx(20.0)
    assert judge["stories"] == stories_needed(judge["story_sd"], 2.0, 0.05, 0.8)
    # Per story, the judge's 6 calls of 40 + 8 tokens are planned too, once (the answers were
    # written by hand: the items hold only the judge's calls)
    assert plan["per_story"]["requests"] == pytest.approx(6 / 3)
    assert plan["per_story"]["prompt_tokens"] == pytest.approx((12 * 100 + 6 * 40) / 3)
    text = CliRunner().invoke(cli, ["plan", "--from", str(run_id)]).output
    assert "finetuned against base, Δjudge: pilot +20.0 points" in text


def test_status_of_an_aggregated_judged_run_shows_the_judge_accuracy_beside_em_f1(
    folder: Path,
) -> None:
    _, sessions = database(folder)
    run_id = three_story_run(sessions, judged=True)
    result = CliRunner().invoke(cli, ["status", str(run_id)])
    assert result.exit_code == 0, result.output
    # The scores table's rows: label | model | questions | answered | failed | EM | F1 | judge
    rows = {
        cells[1].strip(): [c.strip() for c in cells[6:9]]
        for line in result.output.splitlines()
        if "│ evalfleet" in line
        for cells in [line.split("│")]
    }
    assert rows == {"base": ["40.0", "60.0", "80.0"], "finetuned": ["60.0", "86.7", "100.0"]}
    assert "Judge: evalfleet/sim-judge" in result.output
