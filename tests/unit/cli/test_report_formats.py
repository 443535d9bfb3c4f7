"""`evalfleet report RUN_ID --format ...`: what a user gets in each format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from unit.aggregator.simulated_run import database, three_story_run

from evalfleet.cli.main import cli


@pytest.fixture
def run_in_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A finished run in ./evalfleet.db of an empty folder; its id."""
    for name in ("EVALFLEET_DATABASE_URL", "EVALFLEET_BROKER_URL", "TOGETHER_API_KEY",
                 "TOGETHER_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    _, sessions = database(tmp_path)
    return str(three_story_run(sessions))


def test_the_default_table_shows_the_paired_table_and_the_verdict(run_in_folder: str) -> None:
    result = CliRunner().invoke(cli, ["report", run_in_folder])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the table wraps at the terminal's width
    assert "finetuned against base (paired, per domain)" in text
    assert text.rstrip().endswith("HTTP 503: overloaded")  # the left-out questions come last
    assert "smallest detectable difference" in text


def test_html_goes_to_one_file(run_in_folder: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["report", run_in_folder, "--format", "html", "--out", "report.html"]
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert [p.name for p in tmp_path.iterdir() if p.suffix in (".png", ".svg", ".css")] == []


def test_markdown_writes_its_plots_beside_it(run_in_folder: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["report", run_in_folder, "--format", "markdown", "--out", "out/report.md"]
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    pngs = sorted((tmp_path / "out" / "report_files").glob("*.png"))
    assert pngs
    for png in pngs:
        assert f"(report_files/{png.name})" in text


def test_json_holds_the_summary_the_comparison_and_the_diagnostics(run_in_folder: str) -> None:
    result = CliRunner().invoke(cli, ["report", run_in_folder, "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert {"models", "failures_total", "comparison", "diagnostics"} <= set(document)
    overall = document["comparison"]["finetuned"]["overall"]
    assert {"em", "f1", "mcnemar", "f1_outcomes"} <= set(overall)
    assert {"difference", "ci", "p_value", "mde", "se"} <= set(overall["f1"])
