"""HasAns / NoAns: a run over the SQuAD 2.0 sample, answered by hand, splits its scores in
every report format; a run whose every question has an answer shows no split."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import FAILED, AnswerKey, database, finished_run, three_story_run

from evalfleet.aggregator.cross_run import compare_runs
from evalfleet.aggregator.html_report import render_html
from evalfleet.aggregator.markdown_report import markdown_report
from evalfleet.aggregator.render import ANSWERABILITY_TITLE, render_table
from evalfleet.aggregator.report_data import ReportData, report_json, run_report
from evalfleet.producer.loaders.squad import load_squad
from evalfleet.simulator.config import DEMO_MODELS

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "squad-v2-sample.json"
P, A = "Paris#0", "Amazon_River#0"
# Paris: 1 capital (Paris), 2 Eiffel Tower (1889 / in 1889), 3 Louvre (none), 4 Lyon (none);
# Amazon: 1 countries (Brazil and Peru), 2 Nile (none), 3 basin (many kinds of fish / fish).
ANSWERS: dict[AnswerKey, str | None] = {
    ("base", P, 1): "Paris is the capital of France.",  # EM 0, F1 2*(1/5)/(6/5) = 1/3
    ("base", P, 2): "in spring",  # 0 against "1889"; F1 1/2 against "in 1889": leave-one-out 1/4
    ("base", P, 3): "Paris",  # no answer: 0
    ("base", P, 4): "UNKNOWN.",  # no answer, the phrase: 1
    ("base", A, 1): "Peru",  # EM 0, F1 2*(1/3)/(4/3) = 1/2
    ("base", A, 2): "I don't know.",  # no answer, not the phrase: 0
    ("base", A, 3): FAILED,  # left out of every score, for both models
    ("finetuned", P, 1): "Paris",  # 1
    ("finetuned", P, 2): "a world fair",  # 0
    ("finetuned", P, 3): "unknown",  # 1
    ("finetuned", P, 4): "two million",  # 0
    ("finetuned", A, 1): "Brazil and Peru",  # 1
    ("finetuned", A, 2): "",  # nothing, as the official script's no-answer: 1
    ("finetuned", A, 3): "birds",
}
EXPECTED = {  # (questions, answered, failed, scored, EM, F1), EM/F1 on the 3 + 3 scored
    "base": {"HasAns": (4, 3, 1, 3, 0.0, 100 * (1 / 3 + 1 / 4 + 1 / 2) / 3),
             "NoAns": (3, 3, 0, 3, 100 / 3, 100 / 3)},
    "finetuned": {"HasAns": (4, 4, 0, 3, 200 / 3, 200 / 3),
                  "NoAns": (3, 3, 0, 3, 200 / 3, 200 / 3)},
}  # fmt: skip


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    return database(tmp_path)[1]


def _report(sessions: sessionmaker[Session], run_id: int) -> ReportData:
    with sessions() as session:
        return run_report(session, run_id)


def _squad2_report(sessions: sessionmaker[Session]) -> ReportData:
    return _report(sessions, finished_run(sessions, load_squad(SAMPLE), DEMO_MODELS, ANSWERS))


def _table(report: ReportData) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=120).print(render_table(report.summary))
    return buffer.getvalue()


def _assert_split(model: dict[str, Any], expected: dict[str, tuple[Any, ...]]) -> None:
    """The model's HasAns and NoAns (questions, answered, failed, scored, EM, F1)."""
    split = model["answerability"]
    assert list(split) == list(expected)
    for group, values in expected.items():
        keys = ("questions", "answered", "failed", "scored", "em", "f1")
        assert tuple(split[group][k] for k in keys) == pytest.approx(values), group


def test_the_json_report_splits_hasans_and_noans_with_the_hand_computed_scores(
    sessions: sessionmaker[Session],
) -> None:
    # Given the SQuAD 2.0 sample answered by hand, one answerable question failed for base
    document = report_json(_squad2_report(sessions))
    # Then each model has its HasAns and NoAns counts and scores, worked out by hand
    for label, expected in EXPECTED.items():
        _assert_split(document["models"][label], expected)
    # And the overall scores are over both groups: finetuned 4 right of 6 scored
    finetuned = document["models"]["finetuned"]
    assert (finetuned["scored"], finetuned["em"]) == (6, pytest.approx(400 / 6))


def test_a_comparison_of_two_runs_splits_each_side(sessions: sessionmaker[Session]) -> None:
    # Given two hand-answered runs over the SQuAD 2.0 sample
    first = finished_run(sessions, load_squad(SAMPLE), DEMO_MODELS, ANSWERS)
    second = finished_run(sessions, load_squad(SAMPLE), DEMO_MODELS, ANSWERS)
    # When finetuned of the second is compared with base of the first
    with sessions() as session:
        document = report_json(compare_runs(session, first, second, None, "finetuned"))
    # Then each side has its own run's split
    sides = document["models"]
    _assert_split(sides[f"base (run {first})"], EXPECTED["base"])
    _assert_split(sides[f"finetuned (run {second})"], EXPECTED["finetuned"])


def test_the_table_markdown_and_html_show_the_split(sessions: sessionmaker[Session]) -> None:
    report = _squad2_report(sessions)
    table = _table(report)
    markdown = markdown_report(report, None).text
    html = render_html(report)
    for text in (table, markdown, html):
        assert "HasAns" in text and "NoAns" in text and "66.7" in text and "33.3" in text
    assert f"## {ANSWERABILITY_TITLE}" in markdown
    assert "| finetuned | NoAns | 3 | 3 | 66.7 | 66.7 |" in markdown
    assert "| base | HasAns | 4 | 3 | 0.0 | 36.1 |" in markdown
    assert "id='answerability'" in html
    # And a question without an answer shows "(no answer)" as its gold answer in the lists
    assert "gold: (no answer)" in markdown


def test_a_run_whose_every_question_has_an_answer_shows_no_split(
    sessions: sessionmaker[Session],
) -> None:
    # Given the hand-answered CoQA-like run of three stories
    report = _report(sessions, three_story_run(sessions))
    # Then no format mentions the split
    document = report_json(report)
    assert all("answerability" not in m for m in document["models"].values())
    for text in (_table(report), markdown_report(report, None).text, render_html(report)):
        assert "HasAns" not in text and "NoAns" not in text
