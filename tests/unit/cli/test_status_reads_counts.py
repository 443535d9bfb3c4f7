"""`evalfleet status` reads counts: no statement loads answers row by row, and the number of
statements does not grow with the run (no query per story or per answer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, finished_run, three_story_run, tiny_dataset
from unit.cli.sql_statements import reads_answer_rows, recorded_statements

from evalfleet.cli.main import cli
from evalfleet.schema.models import Run, RunState
from evalfleet.simulator.config import DEMO_MODELS


def _status(url: str, run_id: int, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.setenv("EVALFLEET_DATABASE_URL", url)
    result = CliRunner().invoke(cli, ["status", str(run_id), *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _run_of(sessions: sessionmaker[Session], stories: int) -> int:
    """A finished run of `stories` stories of two questions, every question answered."""
    turns = [("Who?", "the mayor"), ("When?", "Monday")]
    data = {
        f"s{i}": ("cnn", "The mayor opened the bridge on Monday.", turns) for i in range(stories)
    }
    answers: dict[tuple[str, str, int], str | None] = {
        (label, key, turn): "the mayor" for label in DEMO_MODELS for key in data for turn in (1, 2)
    }
    return finished_run(sessions, tiny_dataset(data), DEMO_MODELS, answers)


def test_status_of_a_done_run_reads_no_answer_row_and_shows_the_stored_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a finished, aggregated run
    url, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    # When the user asks for its status, as text and as JSON
    with recorded_statements() as statements:
        text = _status(url, run_id, monkeypatch)
        document = json.loads(_status(url, run_id, monkeypatch, "--json"))
    # Then no statement loaded answers one by one
    assert statements and not [s for s in statements if reads_answer_rows(s)]
    # And the scores and the verdict are there all the same
    assert document["models"]["finetuned"]["f1"] == pytest.approx(86.67, abs=0.01)
    assert document["comparison"]["finetuned"]["overall"]["questions"] == 5
    assert "finetuned against base (paired, per domain)" in text
    assert "questions (all models): 11 answered, 1 failed, 0 open of 12\n" in text


def test_status_of_a_running_run_counts_without_scoring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same run, set back to running (as `evalfleet retry` leaves it)
    url, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    with sessions.begin() as session:
        session.execute(update(Run).values(state=RunState.RUNNING.value))
    # When the user asks for its status
    with recorded_statements() as statements:
        document = json.loads(_status(url, run_id, monkeypatch, "--json"))
    # Then no statement loaded answers, and the counts are the run's, without scores yet
    assert not [s for s in statements if reads_answer_rows(s)]
    base = document["models"]["base"]
    assert (base["questions"], base["answered"], base["failed"], base["scored"]) == (6, 5, 1, 5)
    assert base["em"] is None and document["comparison"] == {}
    assert document["failures"] == [
        {"model": "base", "story": "s3", "turn": 2, "error": "HTTP 503: overloaded"}
    ]


def test_the_statements_of_status_do_not_grow_with_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run of 3 stories and one of 30, both finished
    url, sessions = database(tmp_path)
    small, large = _run_of(sessions, 3), _run_of(sessions, 30)
    counts = []
    for run_id in (small, large):
        # When the status of each is asked
        with recorded_statements() as statements:
            _status(url, run_id, monkeypatch)
        counts.append(len(statements))
    # Then both take the same statements: none per story, question or answer
    assert counts[0] == counts[1]
