"""`evalfleet status` counts answered, failed and open questions separately, with the figures
of its own table, and names a model whose requests all fail the same way."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, tiny_dataset

from evalfleet.cli.main import cli
from evalfleet.producer.create_run import create_run
from evalfleet.schema.models import Answer, Item, ItemState, Story
from evalfleet.schema.payloads import RunConfig
from evalfleet.simulator.config import DEMO_MODELS

REFUSED = "APIConnectionError: Connection error. (connection refused)"
GAVE_UP = "failed after 6 tries: APIConnectionError: Connection error. (connection refused)"


def two_turn_run(tmp_path: Path) -> tuple[str, sessionmaker[Session], int, dict[str, int]]:
    """Three stories of two questions, two models: 12 questions, all open."""
    url, sessions = database(tmp_path)
    stories = {key: ("cnn", "The mayor opened the bridge on Monday.",
                     [("Who?", "the mayor"), ("When?", "Monday")])
               for key in ("s1", "s2", "s3")}  # fmt: skip
    run_id = create_run(sessions, tiny_dataset(stories), RunConfig(models=DEMO_MODELS))
    with sessions() as session:
        ids = dict(session.execute(select(Story.key, Story.id).where(Story.run_id == run_id)).all())
    return url, sessions, run_id, {str(k): int(v) for k, v in ids.items()}


def set_items(sessions: sessionmaker[Session], run_id: int, label: str, state: ItemState,
              reason: str, stories: list[int] | None = None) -> None:  # fmt: skip
    which = [Item.run_id == run_id, Item.model_label == label]
    if stories is not None:
        which.append(Item.story_id.in_(stories))
    with sessions.begin() as session:
        session.execute(update(Item).where(*which).values(state=state.value, last_error=reason))


def status(url: str, run_id: int, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("EVALFLEET_DATABASE_URL", url)
    result = CliRunner().invoke(cli, ["status", str(run_id)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def table_counts(output: str) -> dict[str, tuple[int, int]]:
    """(answered, failed) per label, read from the scores table."""
    rows = re.findall(r"│ (base|finetuned)\s+│ \S+\s+│\s+(\d+) │\s+(\d+) │\s+(\d+) │", output)
    return {label: (int(answered), int(failed)) for label, _, answered, failed in rows}


def test_all_failed_and_none_answered_is_said_so_and_agrees_with_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the run: one model's items all failed for good, the other's still open
    url, sessions, run_id, _ = two_turn_run(tmp_path)
    set_items(sessions, run_id, "base", ItemState.FAILED, GAVE_UP)
    set_items(sessions, run_id, "finetuned", ItemState.PENDING, REFUSED)
    # When the user asks for the status
    output = status(url, run_id, monkeypatch)
    # Then nothing is called answered that failed, and the open questions are counted apart
    assert "questions (all models): 0 answered, 6 failed, 6 open of 12\n" in output
    assert table_counts(output) == {"base": (0, 6), "finetuned": (0, 0)}
    # And the model still retrying says how its requests fail
    assert "finetuned: API unreachable (connection refused), retrying\n" in output
    assert "base: " not in output.split("Scores")[0]  # failed for good: nothing retried


def test_answered_failed_and_open_add_up_to_the_questions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given base answered story s1, failed s2 for good and retries s3; finetuned not started
    url, sessions, run_id, stories = two_turn_run(tmp_path)
    with sessions.begin() as session:
        for turn, text in ((1, "the mayor"), (2, "on Monday")):
            session.add(Answer(run_id=run_id, model_label="base", story_id=stories["s1"],
                               turn=turn, text=text))  # fmt: skip
    set_items(sessions, run_id, "base", ItemState.DONE, "", [stories["s1"]])
    set_items(sessions, run_id, "base", ItemState.FAILED, GAVE_UP, [stories["s2"]])
    set_items(sessions, run_id, "base", ItemState.PENDING, REFUSED, [stories["s3"]])
    # When the user asks for the status
    output = status(url, run_id, monkeypatch)
    # Then each count is the table's, and the open ones are the rest
    assert "questions (all models): 2 answered, 2 failed, 8 open of 12\n" in output
    assert table_counts(output) == {"base": (2, 2), "finetuned": (0, 0)}
    # And answers that just arrived mean base is not reported as unreachable
    assert "unreachable" not in output
