"""A run that asked each question several times (--samples K): every report format gives the
share of variance that is sampling noise, `export` gives each sample, and a run asked once
shows no such thing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update
from unit.aggregator.simulated_run import database, three_story_run, tiny_dataset

from evalfleet.aggregator.aggregate import aggregate_run
from evalfleet.cli.main import cli
from evalfleet.producer.create_run import create_run
from evalfleet.schema.db import session_scope
from evalfleet.schema.models import Answer, Item, ItemState, Run, RunState, Story
from evalfleet.schema.payloads import RunConfig

TEXT = "The mayor opened the bridge on Monday."
STORIES = dict.fromkeys(
    ("s1", "s2", "s3"), ("cnn", TEXT, [("Who?", "the mayor"), ("When?", "Monday")])
)
# (label, story, turn) -> each sample's answer: base wavers on s1 turn 1, tuned never does
ANSWERS = {("base", "s1", 1): ("the mayor", "a bridge", "the mayor")}


@pytest.fixture
def folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("EVALFLEET_DATABASE_URL", "EVALFLEET_BROKER_URL", "TOGETHER_API_KEY",
                 "TOGETHER_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def sampled_run(tmp_path: Path) -> int:
    """Three stories of two questions, two models, three samples each, aggregated."""
    _, sessions = database(tmp_path)
    config = RunConfig(models={"base": "m/base", "tuned": "m/tuned"}, temperature=0.7, samples=3)
    run_id = create_run(sessions, tiny_dataset(STORIES), config)
    with session_scope(sessions) as session:
        ids = dict(session.execute(select(Story.key, Story.id)).all())
        for label in config.models:
            for key, (_, _, turns) in STORIES.items():
                for turn, (_, gold) in enumerate(turns, start=1):
                    texts = ANSWERS.get((label, key, turn), (gold,) * 3)
                    session.add_all(
                        Answer(run_id=run_id, model_label=label, story_id=ids[key], turn=turn,
                               sample=k, text=text)
                        for k, text in enumerate(texts)
                    )  # fmt: skip
        session.execute(update(Item).values(state=ItemState.DONE.value))
        session.execute(update(Run).values(state=RunState.AGGREGATING.value))
    assert aggregate_run(sessions, run_id)
    return run_id


def report(*args: str) -> str:
    result = CliRunner().invoke(cli, ["report", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_report_format_gives_the_sampling_noise_of_a_sampled_run(folder: Path) -> None:
    # Given a finished run with 3 samples per question, base's answers varying on one question
    run_id = str(sampled_run(folder))
    # When it is reported in every format
    table = " ".join(report(run_id).split())
    document = json.loads(report(run_id, "--format", "json"))
    report(run_id, "--format", "markdown", "--out", "r.md")
    report(run_id, "--format", "html", "--out", "r.html")
    # Then each gives the share of the answers' variance between a question's samples. Base's
    # 18 answers are 1 but one 0 (mean 17/18): total sum of squares 17/324 + 289/324; within
    # its wavering question (1, 0, 1): 6/9, so 12/17 of it. Tuned's answers never vary.
    assert "Sampling noise (3 samples per question" in table
    assert "base: F1 71%, EM 71% (over 6 questions)" in table
    assert "tuned: F1 -, EM -" in table
    noise = document["sampling_noise"]
    assert noise["base"] == {
        "samples": 3, "questions": 6, "f1_share": pytest.approx(12 / 17),
        "em_share": pytest.approx(12 / 17),
    }  # fmt: skip
    assert noise["tuned"]["f1_share"] is None
    markdown = (folder / "r.md").read_text(encoding="utf-8")
    assert "## Sampling noise" in markdown and "- base: F1 71%" in markdown
    html = (folder / "r.html").read_text(encoding="utf-8")
    assert "<h2>Sampling noise</h2>" in html and "<li>base: F1 71%" in html
    # And each question counts once, scored by its samples' mean: base 2 of 3 right on one
    base = document["models"]["base"]
    assert (base["questions"], base["answered"], base["scored"]) == (6, 6, 6)
    assert base["em"] == pytest.approx(100 * (5 + 2 / 3) / 6)


def test_export_gives_every_sample(folder: Path) -> None:
    run_id = str(sampled_run(folder))
    result = CliRunner().invoke(cli, ["export", run_id])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert len(records) == 2 * 6 * 3
    wavering = [r for r in records if (r["label"], r["story"], r["turn"]) == ("base", "s1", 1)]
    assert [(r["sample"], r["answer"]) for r in wavering] == [
        (0, "the mayor"),
        (1, "a bridge"),
        (2, "the mayor"),
    ]


def test_a_run_asked_once_reports_no_sampling_noise(folder: Path) -> None:
    _, sessions = database(folder)
    run_id = str(three_story_run(sessions))
    assert "Sampling noise" not in report(run_id)
    assert "sampling_noise" not in json.loads(report(run_id, "--format", "json"))
    report(run_id, "--format", "markdown", "--out", "r.md")
    assert "Sampling noise" not in (folder / "r.md").read_text(encoding="utf-8")
    records = [
        json.loads(line) for line in CliRunner().invoke(cli, ["export", run_id]).output.splitlines()
    ]
    assert {r["sample"] for r in records} == {0}
