"""`evalfleet run --samples 3` on the real pipeline (Redis, PostgreSQL, Celery worker processes,
the simulator over HTTP): three stored answers per question and model, each asked with its
own seed, the report's share of sampling noise, and a second identical run from the cache."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fleet import SimulatedFleet, evalfleet, run_args
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from evalfleet.schema.models import Answer, Item

pytestmark = pytest.mark.integration
SAMPLED = ("--limit", "4", "--temperature", "0.7", "--samples", "3", "--wait", "--json")


def test_three_samples_per_question_are_stored_scored_reported_and_cached(
    shared_file: Callable[[str], Path], sim_fleet: SimulatedFleet, postgres_url: str, tmp_path: Path
) -> None:
    dataset = shared_file("coqa/coqa-validation-first20.jsonl")
    with sim_fleet(workers=2, concurrency=8) as (sim, env, _):
        # Given a run asking each question 3 times at temperature 0.7
        first = evalfleet(run_args(dataset, *SAMPLED), env, tmp_path)
        assert first.returncode == 0, first.stderr[-3000:]
        seeds = Counter(sim.stats()["by_seed"])
        calls = sim.stats()["requests_total"]
        # When the same run is made again
        second = evalfleet(run_args(dataset, *SAMPLED), env, tmp_path)
        assert second.returncode == 0, second.stderr[-3000:]
        after_second = sim.stats()["requests_total"]
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    run_id = one["run_id"]
    report = evalfleet(["report", str(run_id)], env, tmp_path)
    status = evalfleet(["status", str(run_id), "--json"], env, tmp_path)
    exported = evalfleet(["export", str(run_id)], env, tmp_path)
    questions = one["models"]["base"]["questions"]
    # Then every question has exactly 3 stored answers per model, samples 0, 1 and 2, from 3
    # items per (model, story)
    engine = create_engine(postgres_url)
    with Session(engine) as session:
        per_question = session.execute(
            select(Answer.model_label, Answer.story_id, Answer.turn, func.count(),
                   func.count(func.distinct(Answer.sample)), func.count(Answer.text))
            .where(Answer.run_id == run_id)
            .group_by(Answer.model_label, Answer.story_id, Answer.turn)
        ).all()  # fmt: skip
        items = session.execute(
            select(Item.model_label, Item.story_id, func.count())
            .where(Item.run_id == run_id)
            .group_by(Item.model_label, Item.story_id)
        ).all()
    engine.dispose()
    assert len(per_question) == 2 * questions
    assert {(n, distinct, answered) for *_, n, distinct, answered in per_question} == {(3, 3, 3)}
    assert {n for *_, n in items} == {3} and len(items) == 2 * 4
    # And the requests carried 3 distinct seeds (0, 1, 2: no --seed), each once per question
    assert seeds == {str(k): 2 * questions for k in range(3)}
    assert calls == 3 * 2 * questions
    # And the scores count each question once, scored on the mean of its samples
    base = one["models"]["base"]
    assert (base["questions"], base["answered"], base["failed"]) == (questions, questions, 0)
    # And status, from SQL counts, agrees: 3 done items per (model, story), each question once
    counted = json.loads(status.stdout)
    assert counted["items"] == {"done": 3 * 2 * 4}
    assert counted["models"]["base"]["answered"] == questions
    # (its progress in answers, 3 per question and model: what the time to go is reckoned on)
    assert counted["progress"]["answered"] == f"{3 * 2 * questions}/{3 * 2 * questions}"
    # And the report gives the share of variance that is sampling noise, above 0 for a model
    # whose answers vary with the seed
    noise = one["sampling_noise"]
    assert set(noise) == {"base", "finetuned"}
    assert all(n["samples"] == 3 and n["questions"] == questions for n in noise.values())
    assert any(0 < (n["f1_share"] or 0) < 1 for n in noise.values()), noise
    assert report.returncode == 0, report.stderr
    assert "Sampling noise (3 samples per question" in " ".join(report.stdout.split())
    # And export gives every sample
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert Counter(r["sample"] for r in records) == dict.fromkeys(range(3), 2 * questions)
    # And the second identical run made no API call and scored the same
    assert after_second == calls
    assert two["progress"]["api_calls"] == 0
    assert two["sampling_noise"] == noise
    for label in ("base", "finetuned"):
        assert two["models"][label]["f1"] == one["models"][label]["f1"]
