"""The judge metric on real services: `evalfleet worker` processes, Redis, PostgreSQL, and the
simulator's judge over real HTTP. Every answer gets exactly one judgement; an exact match
is graded by the rule with no request; a second run pays the judge nothing; and a judge
answering random 429s still ends with every answer graded once, none paid twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fleet import MODELS, evalfleet, fleet_env, logs, run_args, scrape
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from evalfleet.aggregator.no_answer import score_answer
from evalfleet.fleet import WorkerFleet
from evalfleet.schema.models import Answer, Item, Judgement, Question, Run
from evalfleet.schema.payloads import JUDGE_LABEL, RunConfig
from evalfleet.schema.pricing import BUILT_IN
from evalfleet.simulator.config import SIM_JUDGE, SimConfig
from evalfleet.simulator.server import SimServer
from evalfleet.workers.metrics import scraped

pytestmark = pytest.mark.integration

SAMPLE = "coqa/coqa-validation-first20.jsonl"


def judged(database_url: str, run_id: int) -> dict[str, Any]:
    """What a user checks in SQL: the answers, their judgements (by answer key), each
    answer's EM, the run and its items' API calls."""
    engine = create_engine(database_url)
    with Session(engine) as session:
        answers = session.execute(
            select(Answer.model_label, Answer.story_id, Answer.turn, Answer.text,
                   Question.references)
            .join(Question, (Question.story_id == Answer.story_id) & (Question.turn == Answer.turn))
            .where(Answer.run_id == run_id)
        ).all()  # fmt: skip
        judgements = session.execute(
            select(Judgement.model_label, Judgement.story_id, Judgement.turn, Judgement.sample,
                   Judgement.judge, Judgement.verdict, Judgement.by_rule, Judgement.reason,
                   Judgement.error, Judgement.cached, Judgement.created_at)
            .where(Judgement.run_id == run_id)
        ).all()  # fmt: skip
        run = session.get_one(Run, run_id)
        calls = session.scalar(select(func.sum(Item.api_calls)).where(Item.run_id == run_id))
        retried = session.scalar(
            select(func.count()).where(Item.run_id == run_id, Item.attempts > 1)
        )
        judge_tokens = session.scalar(
            select(func.sum(Judgement.prompt_tokens)).where(Judgement.run_id == run_id)
        )
    engine.dispose()
    return {
        "em": {(a[0], a[1], a[2]): score_answer(a[4], a[3]).em for a in answers},
        "judgements": judgements,
        "run": run,
        "calls": int(calls or 0),
        "judge_tokens": int(judge_tokens or 0),
        "retried_items": int(retried or 0),
    }


def assert_each_answer_judged_once(found: dict[str, Any], judge: str) -> list[Any]:
    """One judgement per answer, each a verdict with its reason; EM = 1 exactly when graded
    by the rule. Returns the judgements the judge was asked for."""
    keys = [(j.model_label, j.story_id, j.turn) for j in found["judgements"]]
    assert sorted(keys) == sorted(found["em"]) and len(set(keys)) == len(keys)
    assert {(j.sample, j.judge) for j in found["judgements"]} == {(0, judge)}
    assert all(j.verdict and j.reason and j.error is None for j in found["judgements"])
    for j in found["judgements"]:
        assert j.by_rule == (found["em"][(j.model_label, j.story_id, j.turn)] == 1.0)
        assert not j.by_rule or j.verdict == "correct"
    # The run was aggregated after its last judgement was stored (D3: the items close with
    # their judgements)
    run = found["run"]
    assert run.state == "done" and run.aggregations == 1
    assert max(j.created_at for j in found["judgements"]) <= run.finished_at
    return [j for j in found["judgements"] if not j.by_rule]


def test_every_answer_is_judged_once_exact_matches_unasked_and_a_second_run_pays_nothing(
    shared_file: Callable[[str], Path],
    postgres_url: str,
    redis_url: str,
    queue_name: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    # Given two `evalfleet worker`s on PostgreSQL and Redis, and the simulator with its judge
    dataset = shared_file(SAMPLE)
    args = run_args(dataset, "--limit", "8", "--judge", SIM_JUDGE, "--wait", "--json")
    with SimServer(SimConfig(latency_ms_mean=5)) as sim:
        env = fleet_env(postgres_url, redis_url, queue_name, sim.base_url)
        assert evalfleet(["db", "upgrade"], env, tmp_path).returncode == 0
        with WorkerFleet(2, 4, env, tmp_path / "logs", metrics=True) as fleet:
            # When a user runs both models with --judge and waits
            first = evalfleet(args, env, tmp_path)
            stats = sim.stats()
            texts = [scrape(w.metrics_port) for w in fleet.workers if w.metrics_port]
            sim.reset_stats()
            # And runs the same again
            second = evalfleet(args, env, tmp_path)
            again = sim.stats()
    assert first.returncode == 0, first.stderr + logs(tmp_path)
    assert second.returncode == 0, second.stderr + logs(tmp_path)
    run_id = json.loads(first.stdout)["run_id"]
    found = judged(postgres_url, run_id)
    # Then every answer has exactly one judgement; the exact matches cost no request: the
    # judge was asked once per other answer, and each ask counts in its item's API calls
    asked = assert_each_answer_judged_once(found, SIM_JUDGE)
    by_rule = len(found["judgements"]) - len(asked)
    assert by_rule > 0 and asked
    record_property("judgements", {"answers": len(found["em"]), "by_rule": by_rule,
                                   "asked": len(asked)})  # fmt: skip
    assert stats["by_model"][SIM_JUDGE] == len(asked)
    assert sum(stats["by_model"][m] for m in MODELS.values()) == len(found["em"])
    assert found["calls"] == stats["requests_total"]

    # And the workers' metrics count the judge's requests and tokens under its name, and
    # each judgement row once, by verdict
    def total(sample: str, **labels: str) -> float:
        return sum(scraped(text, sample, **labels) for text in texts)

    assert total("evalfleet_api_requests_total", model=SIM_JUDGE) == len(asked)
    assert total("evalfleet_tokens_total", model=SIM_JUDGE, kind="prompt") == found["judge_tokens"]
    for verdict in ("correct", "incorrect", "not_attempted"):
        stored = sum(j.verdict == verdict for j in found["judgements"])
        assert (
            total("evalfleet_judgements_stored_total", judge=SIM_JUDGE, verdict=verdict) == stored
        )
    # And the run stored its judge, priced from the same table as its models
    config = RunConfig.model_validate(found["run"].config)
    assert config.judge is not None and config.judge.model == SIM_JUDGE
    assert config.prices[JUDGE_LABEL] == BUILT_IN[SIM_JUDGE]
    # And the second run, every answer and grade served from the cache, sent no request
    assert again["requests_total"] == 0
    repeat = judged(postgres_url, json.loads(second.stdout)["run_id"])
    asked_again = assert_each_answer_judged_once(repeat, SIM_JUDGE)
    assert len(asked_again) == len(asked) and all(j.cached for j in asked_again)
    verdicts = sorted((j.model_label, j.turn, j.verdict) for j in found["judgements"])
    assert sorted((j.model_label, j.turn, j.verdict) for j in repeat["judgements"]) == verdicts


def test_a_judge_under_random_429s_grades_every_answer_once_and_pays_no_grade_twice(
    shared_file: Callable[[str], Path],
    postgres_url: str,
    redis_url: str,
    queue_name: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    # Given the answers' simulator, and the judge on a simulator of its own (--judge-base-url)
    # that refuses a share of its requests with 429, and workers that try a request twice
    # (so that some items are handed back and retried with part of their grades stored)
    dataset = shared_file(SAMPLE)
    with (
        SimServer(SimConfig(latency_ms_mean=5)) as sim,
        SimServer(SimConfig(latency_ms_mean=5, fault_429=0.15, seed=14)) as judge_sim,
    ):
        env = fleet_env(
            postgres_url, redis_url, queue_name, sim.base_url, EVALFLEET_REQUEST_ATTEMPTS="2"
        )
        assert evalfleet(["db", "upgrade"], env, tmp_path).returncode == 0
        with WorkerFleet(2, 4, env, tmp_path / "logs"):
            # When a user runs with that judge and waits
            args = run_args(
                dataset, "--limit", "4", "--judge", SIM_JUDGE,
                "--judge-base-url", judge_sim.base_url, "--no-cache", "--wait", "--json",
            )  # fmt: skip
            result = evalfleet(args, env, tmp_path)
        stats, judge_stats = sim.stats(), judge_sim.stats()
    assert result.returncode == 0, result.stderr + logs(tmp_path)
    found = judged(postgres_url, json.loads(result.stdout)["run_id"])
    # Then the judge did refuse requests, yet every answer has exactly one judgement
    assert judge_stats["faults"].get("429", 0) > 0
    asked = assert_each_answer_judged_once(found, SIM_JUDGE)
    record_property("judge", {"answers": len(found["em"]), "asked": len(asked),
                              "429": judge_stats["faults"]["429"],
                              "retried_items": found["retried_items"],
                              "requests": judge_stats["requests_total"]})  # fmt: skip
    # And each grade the judge gave was stored once, none asked for twice: the retried
    # items graded only what had no judgement yet
    assert judge_stats["by_model_status"][SIM_JUDGE]["200"] == len(asked)
    # And the answers' endpoint saw no judge request
    assert SIM_JUDGE not in stats["by_model"]
    assert found["calls"] == stats["requests_total"] + judge_stats["requests_total"]
