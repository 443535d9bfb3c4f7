"""Answers cut by max_tokens in every report format, and finish_reason in the export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update
from unit.aggregator.simulated_run import database, three_story_run

from evalfleet.cli.main import cli
from evalfleet.schema.models import Answer, Story

WARNING = (
    "warning: base: 2 of 5 answers (40.0%) were cut at max_tokens 128 and are scored as cut; "
    "try --max-tokens 256"
)
COUNTS = 'answers cut by max_tokens (finish_reason "length"): base 2 of 5 (40.0%), finetuned 0 of 6'


@pytest.fixture
def cut_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A finished run in ./evalfleet.db; 2 of base's 5 answers were cut at max_tokens."""
    for name in ("EVALFLEET_DATABASE_URL", "EVALFLEET_BROKER_URL", "TOGETHER_API_KEY",
                 "TOGETHER_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions)
    with sessions.begin() as session:
        session.execute(update(Answer).where(Answer.text.is_not(None)).values(finish_reason="stop"))
        session.execute(
            update(Answer)
            .where(Answer.model_label == "base", Answer.turn == 1)
            .where(Answer.story_id.in_(select(Story.id).where(Story.key != "s3")))
            .values(finish_reason="length")
        )
    return str(run_id)


def _report(run_id: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["report", run_id, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_table_shows_the_counts_and_the_warning(cut_run: str) -> None:
    text = " ".join(_report(cut_run).split())  # the table wraps at the terminal's width
    assert COUNTS in text and WARNING in text
    assert text.rstrip().endswith("HTTP 503: overloaded")  # the left-out questions still last


def test_markdown_and_html_show_the_counts_and_the_warning(cut_run: str, tmp_path: Path) -> None:
    markdown = _report(cut_run, "--format", "markdown")
    assert COUNTS in markdown and f"> **{WARNING}**" in markdown
    _report(cut_run, "--format", "html", "--out", "report.html")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<th>cut by max_tokens</th>" in page and "<td>2 (40.0%)</td>" in page
    assert f"<p class='warning'>{WARNING}</p>" in page


def test_json_holds_the_counts_and_the_warning(cut_run: str) -> None:
    document = json.loads(_report(cut_run, "--format", "json"))
    base, finetuned = document["models"]["base"], document["models"]["finetuned"]
    assert (base["truncated"], base["truncated_share"]) == (2, 0.4)
    assert (finetuned["truncated"], finetuned["truncated_share"]) == (0, 0.0)
    assert document["warnings"] == [WARNING]


def test_a_run_without_cut_answers_warns_of_nothing(cut_run: str, tmp_path: Path) -> None:
    _, sessions = database(tmp_path)
    with sessions.begin() as session:
        session.execute(update(Answer).values(finish_reason="stop"))
    text = " ".join(_report(cut_run).split())
    assert "base 0 of 5 (0.0%)" in text and "warning" not in text
    assert json.loads(_report(cut_run, "--json"))["warnings"] == []


def test_the_export_holds_each_answers_finish_reason(cut_run: str) -> None:
    result = CliRunner().invoke(cli, ["export", cut_run])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    reasons = [(r["label"], r["finish_reason"]) for r in records]
    assert reasons.count(("base", "length")) == 2
    assert reasons.count(("base", None)) == 1  # the failed question: no answer, no finish
    assert all(reason == "stop" for label, reason in reasons if label == "finetuned")
