"""`evalfleet report` with several formats: one load and one computation for all of them, and
each file what the format alone writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from unit.aggregator.simulated_run import database, three_story_run
from unit.cli.sql_statements import reads_answer_rows, recorded_statements

from evalfleet.cli.main import cli
from evalfleet.schema.models import Run, RunState

FORMATS = {"table": "r.txt", "json": "r.json", "markdown": "r.md", "html": "r.html"}


def _report(*args: str) -> None:
    result = CliRunner().invoke(cli, ["report", *args], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output


def _all_formats(run_id: int, folder: Path) -> list[str]:
    folder.mkdir()
    args = [
        a for fmt, name in FORMATS.items() for a in ("--format", fmt, "--out", str(folder / name))
    ]
    _report(str(run_id), *args)
    return [(folder / name).read_text(encoding="utf-8") for name in FORMATS.values()]


@pytest.fixture
def run_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    url, sessions = database(tmp_path)
    monkeypatch.setenv("EVALFLEET_DATABASE_URL", url)
    return three_story_run(sessions)


def test_four_formats_of_a_done_run_read_no_answer_row(run_id: int, tmp_path: Path) -> None:
    # When the four formats of a finished run are written in one command
    with recorded_statements() as statements:
        together = _all_formats(run_id, tmp_path / "together")
    # Then the stored analysis serves them all: no answer was loaded
    assert not [s for s in statements if reads_answer_rows(s)]
    # And each file is what the format alone writes
    alone = tmp_path / "alone"
    alone.mkdir()
    for fmt, name in FORMATS.items():
        _report(str(run_id), "--format", fmt, "--out", str(alone / name))
    assert together == [(alone / name).read_text(encoding="utf-8") for name in FORMATS.values()]
    assert "finetuned against base" in together[0] and '"comparison"' in together[1]


def test_four_formats_of_a_running_run_load_the_answers_once(run_id: int, tmp_path: Path) -> None:
    # Given a run that is not done (no stored analysis is used)
    _, sessions = database(tmp_path)
    with sessions.begin() as session:
        session.execute(update(Run).values(state=RunState.RUNNING.value))
    # When its four formats are written in one command
    with recorded_statements() as statements:
        texts = _all_formats(run_id, tmp_path / "out")
    # Then the answers were read once for all of them, and every format has the scores
    assert len([s for s in statements if reads_answer_rows(s)]) == 1
    assert all("86.7" in text or "86.666" in text for text in texts)  # finetuned's F1


def test_several_formats_need_one_out_each(run_id: int) -> None:
    result = CliRunner().invoke(
        cli, ["report", str(run_id), "--format", "json", "--format", "html"]
    )
    assert result.exit_code == 2
    assert "2 --format and 0 --out: with several formats, give one --out for each" in result.output
