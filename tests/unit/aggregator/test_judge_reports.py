"""The judge in every report: its accuracy, agreement with EM/F1 and cost on a hand-judged run,
and nothing about a judge in any format of a run without one."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import update
from unit.aggregator.simulated_run import SIM_JUDGE, database, three_story_run

from evalfleet.aggregator.analysis import compute_analysis, load_analysis, load_story_texts
from evalfleet.aggregator.cross_run import compare_runs
from evalfleet.aggregator.html_report import render_html
from evalfleet.aggregator.markdown_report import markdown_report
from evalfleet.aggregator.render import render_table
from evalfleet.aggregator.report_data import ReportData, report_json, run_report
from evalfleet.aggregator.scored import load_scored_turns
from evalfleet.aggregator.summary import run_summary
from evalfleet.schema.models import Run


def _report(tmp_path: Path, judged: bool) -> ReportData:
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions, judged=judged)
    with sessions() as session:
        return run_report(session, run_id)


def _table(report: ReportData) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(render_table(report.summary))
    return buffer.getvalue()


def _formats(report: ReportData) -> dict[str, str]:
    return {
        "table": _table(report),
        "markdown": markdown_report(report, None).text,
        "html": render_html(report),
        "json": json.dumps(report_json(report)),
    }


def _keys(document: Any) -> set[str]:
    if isinstance(document, dict):
        return set(document) | {k for v in document.values() for k in _keys(v)}
    if isinstance(document, list):
        return {k for v in document for k in _keys(v)}
    return set()


def test_the_agreement_counts_what_the_judge_said_of_each_answer(tmp_path: Path) -> None:
    # Given the three-story run graded by hand (simulated_run.THREE_STORY_VERDICTS)
    document = report_json(_report(tmp_path, judged=True))
    base = document["judge"]["agreement"]["base"]
    finetuned = document["judge"]["agreement"]["finetuned"]
    # Then base: 5 answers graded, 3 EM-wrong of which 2 judged correct, 2 EM-right graded by
    # rule, none judged incorrect; F1 >= 0.5 agrees on 4 (not on the wordy "The mayor...")
    assert (base["graded"], base["correct"], base["incorrect"]) == (5, 4, 1)
    assert (base["em_wrong"], base["em_wrong_judged_correct"]) == (3, 2)
    assert (base["em_right"], base["em_right_judged_incorrect"], base["by_rule"]) == (2, 0, 2)
    assert base["f1_agreement"] == 0.8 and base["could_not_grade"] == 0
    # And finetuned: 6 answers, one the judge could not grade, 2 EM-wrong both judged correct
    assert (finetuned["answers"], finetuned["graded"], finetuned["could_not_grade"]) == (6, 5, 1)
    assert finetuned["em_wrong_judged_correct_share"] == 1.0 and finetuned["by_rule"] == 3
    # And the examples are the EM-wrong answers judged correct, lowest F1 first, with reasons
    examples = base["examples"]
    assert [e["answer"] for e in examples] == [
        "The mayor opened the bridge on Monday.", "Cotton was a white kitten.",
    ]  # fmt: skip
    assert examples[0]["references"] == ["the mayor"]
    assert examples[0]["reason"] == "correct: reason for turn 1"


def test_the_judge_accuracy_is_on_the_questions_in_common_graded_for_both(tmp_path: Path) -> None:
    # Given base failed s3 turn 2 (left out), and the judge failed on finetuned's s3 turn 2
    document = report_json(_report(tmp_path, judged=True))
    models = document["models"]
    # Then both are judged on the 5 questions in common: base 4 of 5, finetuned 5 of 5
    assert models["base"]["judge"] == 80.0 and models["finetuned"]["judge"] == 100.0
    assert models["base"]["domains"]["cnn"]["judge"] == pytest.approx(100 * 2 / 3)
    judge = document["comparison"]["finetuned"]["overall"]["judge"]
    assert (judge["questions"], judge["stories"], judge["difference"]) == (5, 3, 20.0)
    assert (judge["mcnemar"]["fixed"], judge["mcnemar"]["broke"]) == (1, 0)
    assert document["comparison"]["finetuned"]["domains"]["cnn"]["judge"]["too_few_stories"]
    assert "judge accuracy +20.0" in document["comparison"]["finetuned"]["verdict"]
    # And the judge's fixed list holds the one question it graded wrong, then right
    judge_changes = document["diagnostics"]["judge_changes"]["finetuned"]
    assert (judge_changes["fixed_total"], judge_changes["broke_total"]) == (1, 0)
    assert judge_changes["fixed"][0]["other_verdict"] == "correct"


def test_every_format_names_the_judge_and_shows_its_metric(tmp_path: Path) -> None:
    report = _report(tmp_path, judged=True)
    for name, text in _formats(report).items():
        assert SIM_JUDGE in text, name
        assert "80.0" in text, name  # base's judge accuracy
        assert "The mayor opened the bridge on Monday." in text, name  # an agreement example
    formats = _formats(report)
    for name in ("table", "markdown", "html"):
        assert "The judge against EM and F1" in formats[name], name
        assert "finetuned against base by the judge" in formats[name], name
        assert "6 judge calls, 5 graded by rule" in formats[name], name
    assert "What finetuned fixed and broke against base by the judge" in formats["markdown"]
    assert 'id="judge-fixed-finetuned"' in formats["html"]
    # And the plots have a judge panel: accuracy per domain, and its paired difference
    for plot in ("scores", "difference-1"):
        figure = re.search(rf'<figure id="plot-{plot}">(.*?)</figure>', formats["html"], re.S)
        assert figure is not None and "judge accuracy" in figure.group(1), plot


def test_no_format_says_anything_about_a_judge_when_the_run_has_none(tmp_path: Path) -> None:
    report = _report(tmp_path, judged=False)
    for name, text in _formats(report).items():
        assert "judge" not in text.lower(), name
    assert not any("judge" in key for key in _keys(report_json(report)))


def test_the_judge_cost_is_priced_and_added_to_the_run_cost(tmp_path: Path) -> None:
    # Given the judged run with the judge priced at $1 in, $2 out per 1M tokens
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions, judged=True)
    with sessions.begin() as session:
        run = session.get_one(Run, run_id)
        config = dict(run.config) | {"prices": {"judge": [1.0, 2.0]}}
        session.execute(update(Run).where(Run.id == run_id).values(config=config))
    with sessions() as session:
        summary = run_summary(session, run_id).to_json()
    # Then its 6 calls of 40 + 8 tokens cost 240 x 1 + 48 x 2 per million; the models have no
    # price, so the run's total stays unknown rather than the judge's alone
    usage = summary["judge"]["usage"]
    assert (usage["calls"], usage["prompt_tokens"], usage["completion_tokens"]) == (6, 240, 48)
    assert usage["cost_usd"] == (240 * 1.0 + 48 * 2.0) / 1e6
    assert summary["progress"]["cost_usd"] is None


def test_a_stored_analysis_reads_back_the_judge_and_status_shows_its_accuracy(
    tmp_path: Path,
) -> None:
    # Given the aggregated run (its analysis stored): status reads it without any answer
    _, sessions = database(tmp_path)
    run_id = three_story_run(sessions, judged=True)
    with sessions() as session:
        summary = run_summary(session, run_id)
        computed = report_json(run_report(session, run_id))
    assert summary.judge is not None and summary.judge.agreement
    assert summary.to_json()["judge"] == computed["judge"]
    # And the stored document is what the answers and judgements give when computed again
    with sessions() as session:
        stored = load_analysis(session, run_id)
        again = compute_analysis(
            load_scored_turns(session, run_id), load_story_texts(session, run_id)
        )
    assert stored == again and stored.judge and stored.comparisons[0].overall.judge
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(render_table(summary))
    assert "judge" in buffer.getvalue() and "100.0" in buffer.getvalue()


def test_two_runs_graded_by_the_same_judge_compare_on_it_and_others_do_not(
    tmp_path: Path,
) -> None:
    _, sessions = database(tmp_path)
    judged_a = three_story_run(sessions, judged=True)
    judged_b = three_story_run(sessions, judged=True)
    plain = three_story_run(sessions)
    with sessions() as session:
        same = report_json(compare_runs(session, judged_a, judged_b, None, "finetuned"))
        mixed = report_json(compare_runs(session, judged_a, plain, None, "finetuned"))
    assert same["judge"]["model"] == SIM_JUDGE and same["judge"]["usage"] is None
    assert same["comparison"]["finetuned (run 2)"]["overall"]["judge"]["difference"] == 20.0
    assert not any("judge" in key for key in _keys(mixed))
