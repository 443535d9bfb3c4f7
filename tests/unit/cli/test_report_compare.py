"""`evalfleet compare RUN_A RUN_B`: two runs over the same data, question by question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, three_story_run

from evalfleet.cli.main import cli
from evalfleet.schema.models import Question, Story


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> sessionmaker[Session]:
    for name in ("EVALFLEET_DATABASE_URL", "EVALFLEET_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return database(tmp_path)[1]


def test_two_runs_on_the_same_data_are_compared_model_against_model(
    sessions: sessionmaker[Session],
) -> None:
    # Given two runs on the same data
    first, second = three_story_run(sessions), three_story_run(sessions)
    # When run 2's fine-tune is compared with run 1's base
    result = CliRunner().invoke(
        cli, ["compare", str(first), str(second), "--label-b", "finetuned", "--format", "json"]
    )
    # Then the comparison names both sides, and matches the same run's own comparison
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    (side,) = document["comparison"].values()
    assert side["reference"] == f"base (run {first})"
    assert document["runs"][1]["label"] == "finetuned"
    own = CliRunner().invoke(cli, ["report", str(first), "--format", "json"])
    assert side["overall"] == json.loads(own.output)["comparison"]["finetuned"]["overall"]


def test_the_first_label_of_each_run_is_compared_by_default(
    sessions: sessionmaker[Session],
) -> None:
    first, second = three_story_run(sessions), three_story_run(sessions)
    result = CliRunner().invoke(cli, ["compare", str(first), str(second)])
    assert result.exit_code == 0, result.output
    assert f"base (run {second})" in result.output and f"base (run {first})" in result.output


def test_runs_on_different_data_are_refused(sessions: sessionmaker[Session]) -> None:
    first, other = three_story_run(sessions), three_story_run(sessions, name="other.jsonl")
    # Same stories under another name: the same fingerprint, so they ARE comparable
    assert CliRunner().invoke(cli, ["compare", str(first), str(other)]).exit_code == 0
    # But with one question gone from the second run, they are not
    with sessions.begin() as session:
        story_id = session.scalar(select(Story.id).where(Story.run_id == other, Story.key == "s3"))
        session.execute(delete(Question).where(Question.story_id == story_id, Question.turn == 2))
    result = CliRunner().invoke(cli, ["compare", str(first), str(other)])
    assert result.exit_code != 0
    assert f"runs {first} and {other} do not hold the same questions" in result.output


def test_a_run_made_on_other_data_is_refused_with_both_fingerprints(
    sessions: sessionmaker[Session],
) -> None:
    first = three_story_run(sessions)
    second = three_story_run(sessions)
    with sessions.begin() as session:
        from evalfleet.schema.models import Run

        run = session.get_one(Run, second)
        run.dataset_fingerprint = "f" * 64
    result = CliRunner().invoke(cli, ["compare", str(first), str(second)])
    assert result.exit_code != 0
    assert "were made on different data" in result.output and "ffffffffffff" in result.output


def test_an_unknown_label_is_refused_listing_the_labels(sessions: sessionmaker[Session]) -> None:
    first = three_story_run(sessions)
    result = CliRunner().invoke(cli, ["compare", str(first), str(first), "--label-b", "nope"])
    assert result.exit_code != 0
    assert "has no model labelled 'nope' (its labels: base, finetuned)" in result.output
