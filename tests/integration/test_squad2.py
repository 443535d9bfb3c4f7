"""A SQuAD 2.0 file through the whole pipeline: `evalfleet worker` processes, Redis, PostgreSQL,
real HTTP to the simulator; the report splits the questions with an answer from those without."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fleet import MODELS, evalfleet, fleet_env, logs, run_args
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from evalfleet.aggregator.no_answer import has_answer, score_answer
from evalfleet.fleet import WorkerFleet
from evalfleet.schema.models import Answer, Question, Story
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.server import SimServer

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "squad-v2-sample.json"
HAS_ANSWER, NO_ANSWER = 4, 3  # the sample's answerable and is_impossible questions


def _recomputed(database_url: str, run_id: int, label: str) -> dict[str, tuple[float, float]]:
    """Mean EM and F1 (0-100) per group, from the stored answers and references."""
    engine = create_engine(database_url)
    with Session(engine) as session:
        rows = session.execute(
            select(Answer.text, Question.references)
            .join(Story, Story.id == Answer.story_id)
            .join(Question, (Question.story_id == Story.id) & (Question.turn == Answer.turn))
            .where(Answer.run_id == run_id, Answer.model_label == label)
        ).all()
    engine.dispose()
    groups: dict[str, list[Any]] = {"HasAns": [], "NoAns": []}
    for text, references in rows:
        groups["HasAns" if has_answer(references) else "NoAns"].append(
            score_answer(references, text)
        )
    return {
        group: (100 * sum(s.em for s in scores) / len(scores),
                100 * sum(s.f1 for s in scores) / len(scores))
        for group, scores in groups.items()
    }  # fmt: skip


def test_a_squad2_run_reports_hasans_and_noans_per_model(
    postgres_url: str, redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    # Given the machine's PostgreSQL and Redis, the simulator and two `evalfleet worker`s
    with SimServer(SimConfig(latency_ms_mean=5)) as sim:
        env = fleet_env(postgres_url, redis_url, queue_name, sim.base_url)
        upgraded = evalfleet(["db", "upgrade"], env, tmp_path)
        assert upgraded.returncode == 0, upgraded.stderr
        with WorkerFleet(2, 4, env, tmp_path / "logs"):
            # When a user runs both models over the SQuAD 2.0 sample and waits
            result = evalfleet(run_args(SAMPLE, "--wait", "--json"), env, tmp_path)
        requests = sim.stats()["requests_total"]
    assert result.returncode == 0, result.stderr + logs(tmp_path)
    run_id = json.loads(result.stdout)["run_id"]
    assert requests == 2 * (HAS_ANSWER + NO_ANSWER)
    report = evalfleet(["report", str(run_id), "--format", "json"], env, tmp_path)
    assert report.returncode == 0, report.stderr
    models = json.loads(report.stdout)["models"]
    # Then every model has its HasAns and NoAns counts, all answered and scored
    for label in MODELS:
        split = models[label]["answerability"]
        for group, count in (("HasAns", HAS_ANSWER), ("NoAns", NO_ANSWER)):
            assert (split[group]["questions"], split[group]["answered"]) == (count, count)
            assert (split[group]["failed"], split[group]["scored"]) == (0, count)
        # And its scores are a recomputation of the stored answers, group by group
        for group, (em, f1) in _recomputed(postgres_url, run_id, label).items():
            assert (split[group]["em"], split[group]["f1"]) == pytest.approx((em, f1)), group
    # And the fine-tune-like reader says "unknown" where the story never mentions what is
    # asked (the Louvre, the Nile), the base-like one "I don't know." (not the phrase): 2 of 3
    # against 0 (the Lyon question shares "population" with the story and is answered)
    assert models["finetuned"]["answerability"]["NoAns"]["em"] == pytest.approx(200 / 3)
    assert models["base"]["answerability"]["NoAns"]["em"] == 0.0
    # And the table and Markdown reports show the split too
    for fmt in ("table", "markdown"):
        shown = evalfleet(["report", str(run_id), "--format", fmt], env, tmp_path)
        assert shown.returncode == 0 and "HasAns" in shown.stdout and "NoAns" in shown.stdout
