"""Each `evalfleet worker` serves its own Prometheus metrics; scraped over HTTP after a run,
they add up to what SQL and the API saw (docs/operations.md, "Metrics")."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fleet import MODELS, evalfleet, fleet_env, logs, run_args, scrape
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from evalfleet.fleet import WorkerFleet
from evalfleet.schema.models import Answer
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.server import SimServer
from evalfleet.workers.metrics import scraped

pytestmark = pytest.mark.integration

SAMPLE = "coqa/coqa-validation-first20.jsonl"


def test_the_workers_metrics_add_up_to_the_answers_in_sql_and_the_requests_the_api_saw(
    shared_file: Callable[[str], Path],
    postgres_url: str,
    redis_url: str,
    queue_name: str,
    tmp_path: Path,
) -> None:
    # Given two `evalfleet worker`s, each with a metrics port, and a simulator that answers
    # 10% of requests 429 and 5% 503
    with SimServer(SimConfig(latency_ms_mean=20, fault_429=0.1, fault_503=0.05, seed=3)) as sim:
        env = fleet_env(postgres_url, redis_url, queue_name, sim.base_url)
        assert evalfleet(["db", "upgrade"], env, tmp_path).returncode == 0
        with WorkerFleet(2, 4, env, tmp_path / "logs", metrics=True) as fleet:
            # When a user runs both models over 6 stories and waits for the end
            args = run_args(shared_file(SAMPLE), "--limit", "6", "--wait", "--json")
            result = evalfleet(args, env, tmp_path)
            assert result.returncode == 0, result.stderr + logs(tmp_path)
            # and scrapes every worker's /metrics over HTTP
            texts = [scrape(worker.metrics_port) for worker in fleet.workers if worker.metrics_port]
        stats = sim.stats()
    assert len(texts) == 2
    run_id = json.loads(result.stdout)["run_id"]
    engine = create_engine(postgres_url)
    with Session(engine) as session:
        rows = dict(
            session.execute(
                select(Answer.model_label, func.count())
                .where(Answer.run_id == run_id)
                .group_by(Answer.model_label)
            ).all()
        )
        prompt_tokens = session.scalar(select(func.sum(Answer.prompt_tokens)))
    engine.dispose()

    def total(sample: str, **labels: str) -> float:
        return sum(scraped(text, sample, **labels) for text in texts)

    # Then the answers the workers counted are the answer rows in SQL, per model label
    for label in MODELS:
        assert total("evalfleet_answers_stored_total", model_label=label) == rows[label]
    # And their requests by outcome are the simulator's, 429s and 503s included
    by_status = stats["by_status"]
    assert by_status.get("429", 0) > 0 and by_status.get("503", 0) > 0
    assert total("evalfleet_api_requests_total", outcome="ok") == by_status["200"]
    assert total("evalfleet_api_requests_total", outcome="429") == by_status["429"]
    assert total("evalfleet_api_requests_total", outcome="5xx") == by_status["503"]
    assert total("evalfleet_api_request_seconds_count") == stats["requests_total"]
    # And the tokens bought are those stored, with their cost; nothing is still in flight
    assert total("evalfleet_tokens_total", kind="prompt") == prompt_tokens
    assert total("evalfleet_cost_usd_total") > 0
    assert total("evalfleet_items_in_flight") == 0
    # And each worker counted some of the answers (both took work)
    assert all(scraped(text, "evalfleet_answers_stored_total") > 0 for text in texts)
