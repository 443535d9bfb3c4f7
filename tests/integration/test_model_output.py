"""Model output is scored, infrastructure failure is not (docs/architecture.md, "Retry
policy"): real `evalfleet worker` processes, Redis, PostgreSQL and HTTP to the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fleet import MODELS, RunWatcher, evalfleet, fleet_env, logs, run_args
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from evalfleet.aggregator.no_answer import score_answer
from evalfleet.fleet import WorkerFleet
from evalfleet.schema.models import Answer, Question, Result
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.server import SimServer

pytestmark = pytest.mark.integration

SAMPLE = "coqa/coqa-validation-first20.jsonl"
STORIES = 2  # 23 questions; story "1" has two that the story does not answer
QUESTIONS = 23
ATTEMPTS, TASK_RETRIES = 2, 1  # a transient failure is asked 2 x 2 times, then fails


SimRun = Callable[..., tuple[dict[str, Any], int]]


@pytest.fixture
def run_on_sim(
    shared_file: Callable[[str], Path],
    postgres_url: str,
    redis_url: str,
    queue_name: str,
    tmp_path: Path,
) -> SimRun:
    """A user's `run --wait --json` of the sample's first stories on a one-worker fleet
    against a simulator with `config`: the summary and the requests the simulator saw."""

    def run(config: SimConfig, **settings: str) -> tuple[dict[str, Any], int]:
        with SimServer(config) as sim:
            env = fleet_env(postgres_url, redis_url, queue_name, sim.base_url, **settings)
            assert evalfleet(["db", "upgrade"], env, tmp_path).returncode == 0
            with WorkerFleet(1, 8, env, tmp_path / "logs"):
                args = run_args(
                    shared_file(SAMPLE), "--limit", str(STORIES), "--no-cache", "--wait", "--json"
                )
                result = evalfleet(args, env, tmp_path)
            assert result.returncode == 0, result.stderr + logs(tmp_path / "logs")
            return json.loads(result.stdout), int(sim.stats()["requests_total"])

    return run


def test_empty_answers_are_stored_and_scored_as_the_models_answers(
    run_on_sim: SimRun, postgres_url: str
) -> None:
    # Given models that leave a third of their answers empty (finish_reason stop)
    # When a user runs and waits
    summary, requests = run_on_sim(SimConfig(empty_answer_rate=0.3))
    # Then every question was asked once and answered: none failed, none retried
    assert summary["state"] == "done"
    assert requests == 2 * QUESTIONS
    engine = create_engine(postgres_url)
    with Session(engine) as session:
        for label in MODELS:
            reported = summary["models"][label]
            assert (reported["answered"], reported["failed"]) == (QUESTIONS, 0)
            rows = session.execute(
                select(Answer.text, Answer.error, Answer.finish_reason, Question.references)
                .join(
                    Question,
                    (Question.story_id == Answer.story_id) & (Question.turn == Answer.turn),
                )
                .where(Answer.run_id == summary["run_id"], Answer.model_label == label)
            ).all()
            # And the empty answers are stored as such, with the endpoint's finish_reason
            empty = [r for r in rows if r.text == ""]
            assert empty and all(r.error is None and r.finish_reason == "stop" for r in empty)
            # And each scores 0 on an answerable question (right only on a no-answer one)
            for r in empty:
                assert score_answer(r.references, r.text).em == (0.0 if r.references else 1.0)
            # And the stored scores are over every answer, the empty ones included
            scores = [score_answer(r.references, r.text) for r in rows]
            stored = session.scalars(
                select(Result).where(
                    Result.run_id == summary["run_id"],
                    Result.model_label == label,
                    Result.domain == "overall",
                )
            ).one()
            assert stored.scored == reported["scored"] == QUESTIONS
            assert stored.em == pytest.approx(100 * sum(s.em for s in scores) / QUESTIONS)
            assert stored.f1 == pytest.approx(100 * sum(s.f1 for s in scores) / QUESTIONS)
            assert reported["em"] == pytest.approx(stored.em)
    engine.dispose()


@pytest.mark.parametrize(
    ("fault", "reason", "requests_per_question"),
    [
        # 200 with "choices": []: retried (2 attempts, 2 deliveries), then failed
        ("no_choices", "InvalidResponseError", ATTEMPTS * (TASK_RETRIES + 1)),
        # headers and half the body, then the socket closes: retried, then failed
        ("cut", "connection cut mid-response", ATTEMPTS * (TASK_RETRIES + 1)),
        # the content filter withheld the answer: asking again changes nothing, asked once
        ("content_filter", "ContentFilteredError", 1),
    ],
)
def test_an_endpoint_failure_fails_the_question_with_its_reason_and_is_never_scored(
    fault: str,
    reason: str,
    requests_per_question: int,
    run_on_sim: SimRun,
    postgres_url: str,
    watcher: RunWatcher,
) -> None:
    # Given an endpoint that fails every request this way
    faulty = SimConfig(**{f"fault_{fault}": 1.0})  # type: ignore[arg-type]
    # When a user runs and waits
    summary, requests = run_on_sim(
        faulty,
        EVALFLEET_REQUEST_ATTEMPTS=str(ATTEMPTS),
        EVALFLEET_TASK_MAX_RETRIES=str(TASK_RETRIES),
    )
    # Then the run ends, each question asked as often as its failure is retried
    assert summary["state"] == "done"
    assert requests == 2 * QUESTIONS * requests_per_question
    # And every question failed, with the reason stated, and no model has a score
    for label in MODELS:
        reported = summary["models"][label]
        assert (reported["answered"], reported["failed"], reported["scored"]) == (
            0, QUESTIONS, 0,
        )  # fmt: skip
        assert (reported["em"], reported["f1"]) == (None, None)
    assert summary["failures_total"] == 2 * QUESTIONS
    assert all(reason in f["error"] for f in summary["failures"]), summary["failures"]
    # And nothing the endpoint sent was stored as an answer
    engine = create_engine(postgres_url)
    with Session(engine) as session:
        texts = session.scalars(select(Answer.text).where(Answer.run_id == summary["run_id"]))
        assert all(text is None for text in texts)
    engine.dispose()
    if requests_per_question > 1:  # retried: the items failed after their last try
        items = watcher.items(summary["run_id"])
        assert all(f"failed after {TASK_RETRIES + 1} tries" in (i.last_error or "") for i in items)
