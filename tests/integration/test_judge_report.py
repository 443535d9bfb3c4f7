"""The judge metric over a real PostgreSQL database: a run of the 20-story CoQA sample, its
answers from the simulator's reader and a judgement per answer written as the judge's worker
writes them, aggregated by the real aggregator; `evalfleet report --format json` then shows
the judge accuracy and the agreement those rows imply, counted here from the rows themselves."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from unit.aggregator.simulated_run import SIM_JUDGE, AnswerKey, finished_run, simulated_answers

from evalfleet.aggregator.diagnostics import contains_gold
from evalfleet.aggregator.no_answer import score_answer
from evalfleet.cli.main import cli
from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.schema.db import make_engine, make_sessionmaker
from evalfleet.schema.migrate import upgrade
from evalfleet.simulator.config import DEMO_MODELS

pytestmark = pytest.mark.integration

SAMPLE = "coqa/coqa-validation-first20.jsonl"
JUDGE_DOWN_EVERY = 37  # every 37th answer's judgement failed: not graded, never wrong


def _verdict(references: tuple[str, ...], answer: str, em: float) -> str:
    """The hand judge: EM = 1 by rule, a wordy answer holding the gold correct, else not."""
    if em == 1.0:
        return "rule"
    if answer.strip().lower() == "unknown":
        return "not_attempted"
    return "correct" if contains_gold(answer, references) else "incorrect"


def test_report_json_shows_the_judge_accuracy_and_agreement_the_rows_imply(
    shared_file: Callable[[str], Path], postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the CoQA sample answered by both simulated models, one answer failed, and every
    # answer graded (EM = 1 by rule), a few judgements failed
    dataset = load_dataset_spec(str(shared_file(SAMPLE)))
    answers = simulated_answers(dataset, DEMO_MODELS)
    first = dataset.stories[0]
    answers[("base", first.key, 1)] = None  # failed: left out of every score
    references = {(s.key, q.turn): q.references for s in dataset.stories for q in s.questions}
    verdicts: dict[AnswerKey, str | None] = {}
    for i, ((label, key, turn), text) in enumerate(sorted(answers.items())):
        if text is None:
            continue
        em = score_answer(references[(key, turn)], text).em
        verdict = _verdict(references[(key, turn)], text, em)
        verdicts[(label, key, turn)] = None if i % JUDGE_DOWN_EVERY == 0 else verdict
    upgrade(postgres_url)
    sessions = make_sessionmaker(make_engine(postgres_url))
    run_id = finished_run(sessions, dataset, DEMO_MODELS, answers, judge=SIM_JUDGE,
                          verdicts=verdicts)  # fmt: skip
    # When the report is asked for as JSON
    monkeypatch.setenv("EVALFLEET_DATABASE_URL", postgres_url)
    result = CliRunner().invoke(cli, ["report", str(run_id), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # Then each model's judge accuracy is its share correct on the questions answered by both
    # and graded for both
    graded = {k: v for k, v in verdicts.items() if v is not None}
    keys = {(key, turn) for _, key, turn in graded}
    both = {k for k in keys if all((label, *k) in graded for label in DEMO_MODELS)}
    for label in DEMO_MODELS:
        correct = sum(graded[(label, *k)] in ("correct", "rule") for k in both)
        assert report["models"][label]["judge"] == pytest.approx(100 * correct / len(both))
    judge = report["comparison"]["finetuned"]["overall"]["judge"]
    assert judge["questions"] == len(both) and judge["stories"] == 20
    assert judge["difference"] == pytest.approx(
        report["models"]["finetuned"]["judge"] - report["models"]["base"]["judge"]
    )
    # And the agreement counts every graded answer of each model
    for label in DEMO_MODELS:
        mine = {k: v for k, v in verdicts.items() if k[0] == label}
        em = {k: score_answer(references[k[1:]], answers[k] or "").em for k in mine}
        agreement = report["judge"]["agreement"][label]
        assert agreement["graded"] == sum(v is not None for v in mine.values())
        assert agreement["could_not_grade"] == sum(v is None for v in mine.values())
        assert agreement["by_rule"] == sum(v == "rule" for v in mine.values())
        assert agreement["em_wrong_judged_correct"] == sum(
            v == "correct" and em[k] < 0.5 for k, v in mine.items()
        )
        assert agreement["not_attempted"] == sum(v == "not_attempted" for v in mine.values())
    # And the judge's usage is its rows: a call of 40 + 8 tokens per graded or failed answer
    # that was not graded by rule
    usage = report["judge"]["usage"]
    calls = sum(v != "rule" for v in verdicts.values())
    assert (usage["calls"], usage["prompt_tokens"]) == (calls, 40 * calls)
    assert report["judge"]["model"] == SIM_JUDGE
