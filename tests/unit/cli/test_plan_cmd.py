"""`evalfleet plan --from RUN_ID --mde 2`: stories and cost from a pilot run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from unit.aggregator.simulated_run import database, three_story_run

from evalfleet.aggregator.plan_report import PlanError, plan_run
from evalfleet.aggregator.planning import stories_needed
from evalfleet.cli.main import cli
from evalfleet.schema.models import Answer, Item, Run, RunState


@pytest.fixture
def pilot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The hand-answered run in ./evalfleet.db: 3 calls per item, one answer from the cache."""
    for name in ("EVALFLEET_DATABASE_URL", "EVALFLEET_BROKER_URL", "TOGETHER_API_KEY",
                 "TOGETHER_BASE_URL", "EVALFLEET_PRICES"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    with sessions.begin() as session:
        session.execute(update(Item).where(Item.run_id == run_id).values(api_calls=3))
        session.execute(
            update(Answer).where(Answer.run_id == run_id, Answer.turn == 1,
                                 Answer.model_label == "base").values(cached=True)
        )  # fmt: skip
    return str(run_id)


def test_the_plan_gives_stories_and_cost_per_comparison(pilot: str) -> None:
    result = CliRunner().invoke(cli, ["plan", "--from", pilot, "--mde", "2", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert (plan["mde"], plan["alpha"], plan["power"], plan["pilot_stories"]) == (2, 0.05, 0.8, 3)
    # Per story: 6 items x 3 calls + 3 cached answers, over 3 stories; 12 answers x 100 tokens
    per_story = plan["per_story"]
    assert per_story["requests"] == pytest.approx((6 * 3 + 3) / 3)
    assert per_story["prompt_tokens"] == pytest.approx(12 * 100 / 3)
    # And the run stored no price: the sim models' list price ($0.18 per 1M) is used, and said
    assert plan["prices"]["base"] == {"in": 0.18, "out": 0.18, "source": "price table"}
    tokens = per_story["prompt_tokens"] + per_story["completion_tokens"]
    assert per_story["cost_usd"] == pytest.approx(tokens * 0.18 / 1e6)
    f1 = plan["comparisons"]["finetuned"]["f1"]
    assert f1["stories"] == stories_needed(f1["story_sd"], 2.0, 0.05, 0.8)
    assert f1["cost"]["requests"] == round(per_story["requests"] * f1["stories"])
    assert set(plan["comparisons"]["finetuned"]) == {"reference", "f1", "em"}


def test_the_text_plan_and_its_options(pilot: str) -> None:
    result = CliRunner().invoke(
        cli, ["plan", "--from", pilot, "--mde", "5", "--power", "0.9", "--alpha", "0.01"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"pilot: run {pilot}, tiny.jsonl, 3 stories; per story")
    assert "finetuned against base, ΔF1: pilot" in result.output
    assert "for 90% power to detect 5 points (alpha 0.01, two-sided" in result.output
    assert "ΔEM" in result.output and "list prices" in result.output


@pytest.mark.parametrize(
    ("option", "value"), [("--power", "1.5"), ("--alpha", "0"), ("--mde", "0")]
)
def test_a_bad_option_is_a_usage_error(pilot: str, option: str, value: str) -> None:
    result = CliRunner().invoke(cli, ["plan", "--from", pilot, option, value])
    assert result.exit_code == 2, result.output


def test_an_unfinished_run_is_no_pilot(pilot: str, tmp_path: Path) -> None:
    _, sessions = database(tmp_path)
    with sessions.begin() as session:
        session.execute(update(Run).values(state=RunState.RUNNING.value))
    result = CliRunner().invoke(cli, ["plan", "--from", pilot])
    assert result.exit_code == 1 and "plan from a finished (done) run" in result.output
    with sessions() as session, pytest.raises(PlanError):
        plan_run(session, int(pilot), 2.0, 0.05, 0.8, {})
