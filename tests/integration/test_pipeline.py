"""The whole pipeline on real services: `evalfleet worker` processes, Redis, PostgreSQL or
SQLite, real HTTP to the simulator, over the 20-story CoQA sample (297 questions)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fleet import MODELS, clean_env, evalfleet, fleet_env, logs, run_args
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from evalfleet.aggregator.no_answer import score_answer
from evalfleet.fleet import WorkerFleet
from evalfleet.schema.models import Answer, Question, Result, Run, Story
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.server import SimServer

pytestmark = pytest.mark.integration

SAMPLE = "coqa/coqa-validation-first20.jsonl"
QUESTIONS = 297


def assert_complete_and_consistent(database_url: str, summary: dict[str, Any]) -> None:
    """What a user checks: every question answered once per model; the stored scores are a
    recomputation of the stored answers; the aggregator ran once."""
    assert summary["state"] == "done", summary
    for label, model in MODELS.items():
        reported = summary["models"][label]
        assert reported["model"] == model
        assert (reported["questions"], reported["answered"], reported["failed"]) == (
            QUESTIONS,
            QUESTIONS,
            0,
        )  # noqa: E501
    engine = create_engine(database_url)
    with Session(engine) as session:
        run = session.get_one(Run, summary["run_id"])
        assert run.aggregations == 1
        for label in MODELS:
            keys = session.execute(
                select(Answer.story_id, Answer.turn).where(
                    Answer.run_id == run.id, Answer.model_label == label
                )
            ).all()
            assert len(keys) == QUESTIONS and len(set(keys)) == QUESTIONS
            rows = session.execute(
                select(Answer.text, Question.references)
                .join(Story, Story.id == Answer.story_id)
                .join(Question, (Question.story_id == Story.id) & (Question.turn == Answer.turn))
                .where(Answer.run_id == run.id, Answer.model_label == label)
            ).all()
            assert all(text for text, _ in rows)
            scores = [score_answer(references, text) for text, references in rows]
            stored = session.scalars(
                select(Result).where(
                    Result.run_id == run.id, Result.model_label == label, Result.domain == "overall"
                )
            ).one()
            assert stored.em == pytest.approx(100 * sum(s.em for s in scores) / len(scores))
            assert stored.f1 == pytest.approx(100 * sum(s.f1 for s in scores) / len(scores))
            assert summary["models"][label]["f1"] == pytest.approx(stored.f1)
        domains = session.scalar(
            select(func.count(func.distinct(Result.domain))).where(Result.run_id == run.id)
        )
        assert domains == 1 + len({s.source for s in session.scalars(select(Story))})
    engine.dispose()


def test_two_workers_on_postgres_and_redis_answer_every_question_exactly_once(
    shared_file: Callable[[str], Path],
    postgres_url: str,
    redis_url: str,
    queue_name: str,
    tmp_path: Path,
) -> None:
    # Given the machine's PostgreSQL and Redis, the simulator, and two `evalfleet worker`s
    # (at 40 ms a request, so that the workers' concurrency is what bounds the requests in flight)
    dataset = shared_file(SAMPLE)
    with SimServer(SimConfig(latency_ms_mean=40)) as sim:
        env = fleet_env(postgres_url, redis_url, queue_name, sim.base_url)
        upgraded = evalfleet(["db", "upgrade"], env, tmp_path)
        assert upgraded.returncode == 0, upgraded.stderr
        with WorkerFleet(2, 4, env, tmp_path / "logs"):
            # When a user runs both models over the 20 stories and waits
            result = evalfleet(run_args(dataset, "--wait", "--json"), env, tmp_path)
        stats = sim.stats()
    # Then the run is done, with every answer stored once and paid once
    assert result.returncode == 0, result.stderr + logs(tmp_path)
    assert_complete_and_consistent(postgres_url, json.loads(result.stdout))
    assert stats["requests_total"] == 2 * QUESTIONS
    # And never more requests in flight than the two workers' --concurrency 4, both models
    # together
    assert stats["max_in_flight"] <= 2 * 4


def test_embedded_default_runs_on_sqlite_with_its_own_redis_and_workers(
    shared_file: Callable[[str], Path], tmp_path: Path
) -> None:
    # Given no database or broker configured: only the simulator's URL
    dataset = shared_file(SAMPLE)
    with SimServer(SimConfig(latency_ms_mean=5)) as sim:
        env = clean_env(TOGETHER_BASE_URL=sim.base_url)
        # When the user runs the eval (the CLI starts Redis and two workers itself)
        result = evalfleet(run_args(dataset, "--wait", "--json"), env, tmp_path)
        requests = sim.stats()["requests_total"]
    # Then a SQLite file in the working directory holds the complete, consistent run
    assert result.returncode == 0, result.stderr + logs(tmp_path / ".evalfleet")
    database = tmp_path / "evalfleet.db"
    assert database.is_file()
    summary = json.loads(result.stdout)
    assert_complete_and_consistent(f"sqlite:///{database}", summary)
    assert requests == 2 * QUESTIONS
    assert_reports_agree(summary, env, tmp_path)


def assert_reports_agree(summary: dict[str, Any], env: dict[str, str], cwd: Path) -> None:
    """status, report and export tell the same story as the run's own --json."""
    run_id = str(summary["run_id"])
    status = evalfleet(["status", run_id, "--json"], env, cwd)
    assert status.returncode == 0 and json.loads(status.stdout)["models"] == summary["models"]
    markdown = evalfleet(["report", run_id, "--format", "markdown"], env, cwd)
    assert markdown.returncode == 0
    for label in MODELS:
        assert f"{summary['models'][label]['f1']:.1f}" in markdown.stdout
    exported = evalfleet(["export", run_id], env, cwd)
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(records) == 2 * QUESTIONS
    assert set(records[0]) >= {
        "story", "turn", "model", "question", "answer", "references", "em", "f1",
        "prompt_tokens", "completion_tokens", "latency_ms", "error",
    }  # fmt: skip
    for label, model in MODELS.items():
        f1 = [r["f1"] for r in records if r["model"] == model]
        assert 100 * sum(f1) / len(f1) == pytest.approx(summary["models"][label]["f1"])
