"""Bad input at the command line: one clear line, a non-zero exit, and nothing half-done."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalfleet.cli.main import cli


@pytest.fixture
def user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """A user in an empty folder with no evalfleet settings in the environment."""
    for name in ("EVALFLEET_DATABASE_URL", "EVALFLEET_BROKER_URL", "TOGETHER_API_KEY",
                 "TOGETHER_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_a_missing_api_key_for_the_together_api_is_refused_before_anything_is_written(
    user: CliRunner, tmp_path: Path, shared_file: Callable[[str], Path]
) -> None:
    dataset = shared_file("coqa/coqa-validation-first20.jsonl")
    result = user.invoke(cli, ["run", "--dataset", str(dataset), "--base", "a", "--finetuned", "b"])
    assert result.exit_code != 0
    assert "TOGETHER_API_KEY is not set" in result.output
    assert not (tmp_path / "evalfleet.db").exists()


def test_a_base_url_ending_in_v1_is_refused_with_the_fix(
    user: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOGETHER_BASE_URL", "http://127.0.0.1:8000/v1")
    result = user.invoke(cli, ["run", "--base", "a", "--finetuned", "b"])
    assert result.exit_code != 0 and "host only" in result.output


def test_an_unknown_dataset_name_is_refused(user: CliRunner, tmp_path: Path) -> None:
    result = user.invoke(
        cli, ["run", "--dataset", "nope", "--base", "a", "--finetuned", "b"],
        env={"TOGETHER_BASE_URL": "http://127.0.0.1:9"},
    )  # fmt: skip
    assert result.exit_code != 0 and "unknown data set 'nope'" in result.output
    assert not (tmp_path / "evalfleet.db").exists()


def test_a_malformed_data_file_is_refused_naming_the_record_and_field(
    user: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"source": "wiki", "story": "S.", "answers": {"input_text": ["x"]}}\n')
    result = user.invoke(
        cli, ["run", "--dataset", str(bad), "--base", "a", "--finetuned", "b"],
        env={"TOGETHER_BASE_URL": "http://127.0.0.1:9"},
    )  # fmt: skip
    assert result.exit_code != 0
    assert "bad.jsonl" in result.output and "questions" in result.output
    assert not (tmp_path / "evalfleet.db").exists()


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_a_limit_below_one_is_refused(user: CliRunner, limit: str) -> None:
    result = user.invoke(
        cli, ["run", "--limit", limit, "--base", "a", "--finetuned", "b"],
        env={"TOGETHER_BASE_URL": "http://127.0.0.1:9"},
    )  # fmt: skip
    assert result.exit_code != 0 and "--limit must be a positive number" in result.output


def test_an_unknown_history_mode_is_refused_listing_the_modes(user: CliRunner) -> None:
    result = user.invoke(cli, ["run", "--history", "chatty", "--base", "a", "--finetuned", "b"])
    assert result.exit_code != 0
    assert "'chatty' is not one of 'gold', 'model', 'questions', 'none'" in result.output


def test_no_model_given_is_refused(user: CliRunner) -> None:
    result = user.invoke(cli, ["run"], env={"TOGETHER_BASE_URL": "http://127.0.0.1:9"})
    assert result.exit_code != 0 and "no model given" in result.output


def test_a_database_that_cannot_connect_is_named_without_its_password(
    user: CliRunner, tmp_path: Path, shared_file: Callable[[str], Path]
) -> None:
    dataset = shared_file("coqa/coqa-validation-first20.jsonl")
    result = user.invoke(
        cli, ["run", "--dataset", str(dataset), "--limit", "1", "--base", "a", "--finetuned", "b",
              "--no-preflight"],  # the API's check would refuse 127.0.0.1:9 first
        env={
            "TOGETHER_BASE_URL": "http://127.0.0.1:9",
            "EVALFLEET_DATABASE_URL": "postgresql+psycopg://u:secret-pw@127.0.0.1:1/none",
        },
    )  # fmt: skip
    assert result.exit_code != 0
    assert "cannot connect to the database" in result.output
    assert "secret-pw" not in result.output


def test_a_broker_that_cannot_connect_is_refused_before_a_run_is_written(
    user: CliRunner, tmp_path: Path, shared_file: Callable[[str], Path]
) -> None:
    dataset = shared_file("coqa/coqa-validation-first20.jsonl")
    result = user.invoke(
        cli, ["run", "--dataset", str(dataset), "--limit", "1", "--base", "a", "--finetuned", "b",
              "--no-preflight"],  # the API's check would refuse 127.0.0.1:9 first
        env={"TOGETHER_BASE_URL": "http://127.0.0.1:9", "EVALFLEET_BROKER_URL": "redis://127.0.0.1:1/0"},
    )  # fmt: skip
    assert result.exit_code != 0 and "cannot connect to the broker" in result.output
    status = user.invoke(cli, ["status", "1"])
    assert status.exit_code != 0 and "no run with id 1" in status.output


def test_a_worker_without_a_broker_url_says_which_variable_to_set(user: CliRunner) -> None:
    result = user.invoke(cli, ["worker"])
    assert result.exit_code != 0 and "EVALFLEET_BROKER_URL is not set" in result.output


def test_report_of_an_unknown_run_is_a_clear_error(user: CliRunner) -> None:
    result = user.invoke(cli, ["report", "42"])
    assert result.exit_code != 0 and "no evalfleet database" in result.output
