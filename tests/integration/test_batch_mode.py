"""Batch mode through real worker processes, Redis, PostgreSQL and the simulator: every
expected answer stored once with no synchronous chat call, the scores of a synchronous run
at half its cost, partial errors retried or failed with their reason, and a killed poller
resumed without a second submission."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fleet import MODELS, RunWatcher, SimulatedFleet, evalfleet, run_args
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from evalfleet.schema.models import Answer, Batch
from evalfleet.simulator.batches import BatchSimConfig
from evalfleet.simulator.server import SimServer

pytestmark = pytest.mark.integration
STORIES = "3"
# Small limits, so that each model's questions are split over several batch files.
BATCH_ENV = {"EVALFLEET_BATCH_POLL_S": "0.5", "EVALFLEET_BATCH_MAX_REQUESTS": "20"}


def batch_stats(sim: SimServer) -> dict[str, Any]:
    return dict(httpx.get(f"{sim.base_url}/sim/batch-stats").json())


def batch_rows(database_url: str, run_id: int) -> list[Batch]:
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(Batch).where(Batch.run_id == run_id)))
    finally:
        engine.dispose()


def answer_keys(database_url: str, run_id: int) -> list[tuple[str, int, int]]:
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Answer.model_label, Answer.story_id, Answer.turn).where(
                    Answer.run_id == run_id, Answer.text.is_not(None)
                )
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        engine.dispose()


def test_a_batch_run_stores_every_answer_once_without_chat_calls_and_scores_as_sync(
    shared_file: Callable[[str], Path], sim_fleet: SimulatedFleet, postgres_url: str, tmp_path: Path
) -> None:
    dataset = shared_file("coqa/coqa-validation-first20.jsonl")
    batch_sim = BatchSimConfig(completion_delay_s=1.0)
    with sim_fleet(batch=batch_sim, **BATCH_ENV) as (sim, env, _):
        # Given a batch run of two models over three stories, without the cache
        args = ("--limit", STORIES, "--no-cache", "--wait", "--json")
        batch = evalfleet(run_args(dataset, *args, "--mode", "batch"), env, tmp_path)
        chat_calls_of_batch = sim.stats()["requests_total"]
        stats = batch_stats(sim)
        # And the same run in synchronous mode
        sync = evalfleet(run_args(dataset, *args), env, tmp_path)
    assert batch.returncode == 0, batch.stderr[-3000:]
    assert sync.returncode == 0, sync.stderr[-3000:]
    batched, synced = json.loads(batch.stdout), json.loads(sync.stdout)
    questions = batched["models"]["base"]["questions"]
    # Then no synchronous chat call was made, and every question of each model was answered
    assert chat_calls_of_batch == 0
    keys = answer_keys(postgres_url, batched["run_id"])
    assert len(keys) == len(set(keys)) == 2 * questions
    # And once: the simulator answered each line once, over several files per model
    rows = batch_rows(postgres_url, batched["run_id"])
    assert stats["batches_created"] == len(rows) >= 2 * 2
    assert stats["lines_answered"] == 2 * questions and stats["lines_failed"] == 0
    assert all(r.state == "done" and len(r.custom_ids) <= 20 for r in rows)
    # And the scores are the synchronous run's, at half its cost (the default batch price)
    for label in ("base", "finetuned"):
        got, want = batched["models"][label], synced["models"][label]
        assert (got["em"], got["f1"], got["answered"]) == (want["em"], want["f1"], want["answered"])
    assert batched["progress"]["cost_usd"] == pytest.approx(synced["progress"]["cost_usd"] / 2)


def test_partial_batch_errors_are_retried_in_a_new_batch_then_failed_with_their_reason(
    shared_file: Callable[[str], Path], sim_fleet: SimulatedFleet, postgres_url: str, tmp_path: Path
) -> None:
    dataset = shared_file("coqa/coqa-validation-first20.jsonl")
    errors = BatchSimConfig(completion_delay_s=0.5, error_share=0.3, seed=1)
    # Given a simulator answering 30% of batch lines 503, and one retry round
    with sim_fleet(batch=errors, **BATCH_ENV, EVALFLEET_TASK_MAX_RETRIES="1") as (sim, env, _):
        # When a batch run ends
        result = evalfleet(
            run_args(dataset, "--limit", STORIES, "--mode", "batch", "--wait", "--json"),
            env, tmp_path,
        )  # fmt: skip
        stats = batch_stats(sim)
        summary = json.loads(result.stdout)
        run_id = summary["run_id"]
        status = evalfleet(["status", str(run_id)], env, tmp_path)
        watcher = RunWatcher(postgres_url)
        items = watcher.items(run_id)
        rows = batch_rows(postgres_url, run_id)
        answered = len(answer_keys(postgres_url, run_id))
        # And what failed is asked again with `evalfleet retry`, in batches too
        retried = evalfleet(["retry", str(run_id)], env, tmp_path)
        after_retry = watcher.wait_for(run_id, timeout=120)
        watcher.close()
        stats_after_retry = batch_stats(sim)
        chat_calls = sim.stats()["requests_total"]
    # Then the failed lines went into second-round batches
    assert {r.round for r in rows} == {1, 2}
    assert stats["batches_created"] == len(rows) and stats["lines_failed"] > 0
    # And lines that failed twice failed their items with the reason, never scored
    failed = [i for i in items if i.state == "failed"]
    assert failed, "with 30% errors twice, some of 123 lines fail both rounds (seed 1)"
    for item in failed:
        assert item.last_error == (
            "failed after 2 batches: batch error (503): simulated batch line failure"
        )
    assert answered == stats["lines_answered"]
    assert sum(m["answered"] for m in summary["models"].values()) == answered
    assert sum(m["failed"] for m in summary["models"].values()) > 0
    # And status shows the batches' progress
    assert "base batches:" in status.stdout and "sent again" in status.stdout
    # And the retry asked the failed questions in new batches, never synchronously
    assert retried.returncode == 0 and "batches sent" in retried.stdout, retried.stderr[-2000:]
    assert after_retry == "done" and chat_calls == 0
    assert stats_after_retry["batches_created"] > stats["batches_created"]
    assert len(answer_keys(postgres_url, run_id)) > answered


def test_a_killed_poller_is_resumed_by_another_worker_without_resubmitting(
    shared_file: Callable[[str], Path], sim_fleet: SimulatedFleet, postgres_url: str, tmp_path: Path
) -> None:
    dataset = shared_file("coqa/coqa-validation-first20.jsonl")
    slow = BatchSimConfig(completion_delay_s=8.0)
    with sim_fleet(batch=slow, **BATCH_ENV, EVALFLEET_SWEEP_INTERVAL_S="1") as (sim, env, fleet):
        watcher = RunWatcher(postgres_url)
        # Given a batch run whose batches are being polled by the one worker
        queued = evalfleet(
            run_args(dataset, "--limit", STORIES, "--mode", "batch", "--no-cache", "--json"),
            env, tmp_path,
        )  # fmt: skip
        assert queued.returncode == 0, queued.stderr[-3000:]
        run_id = int(json.loads(queued.stdout)["run_id"])
        deadline = time.monotonic() + 60
        while not all(r.poller for r in batch_rows(postgres_url, run_id)):
            assert time.monotonic() < deadline, "the batches were never polled"
            time.sleep(0.2)
        created = batch_stats(sim)["batches_created"]
        pollers = {r.id: r.poller for r in batch_rows(postgres_url, run_id)}
        # When that worker is killed mid-way and another one starts
        fleet.kill(fleet.alive()[0])
        fleet.start_more(1)
        state = watcher.wait_for(run_id, timeout=120)
        questions = len(answer_keys(postgres_url, run_id))
        watcher.close()
        stats = batch_stats(sim)
    # Then the run ended with every answer, from the batches submitted before the kill
    assert state == "done"
    rows = batch_rows(postgres_url, run_id)
    assert stats["batches_created"] == created == len(rows)
    # And each batch was finished by a new poll chain, the sweep's, not the killed one's
    assert all(r.state == "done" and r.poller != pollers[r.id] for r in rows)
    assert stats["lines_answered"] == questions > 0
    assert sim.stats()["requests_total"] == 0


def test_a_batch_run_submits_only_the_stories_its_budget_can_pay_and_status_json_shows_it(
    shared_file: Callable[[str], Path], sim_fleet: SimulatedFleet, postgres_url: str, tmp_path: Path
) -> None:
    dataset = shared_file("coqa/coqa-validation-first20.jsonl")
    batch_sim = BatchSimConfig(completion_delay_s=0.5)
    with sim_fleet(batch=batch_sim, **BATCH_ENV) as (sim, env, _):
        # Given a batch run of three stories whose budget pays for about two of them: each
        # line may cost its prompt (~4 characters a token) and max_tokens of answer, at $1
        # per million tokens in batch
        prices = ("--batch-price", f"{MODELS['base']}=1,1", "--batch-price",
                  f"{MODELS['finetuned']}=1,1")  # fmt: skip
        args = ("--limit", STORIES, "--no-cache", "--mode", "batch", "--wait", "--json")
        result = evalfleet(run_args(dataset, *args, *prices, "--budget", "0.035"), env, tmp_path)
        stats = batch_stats(sim)
        run_id = json.loads(result.stdout)["run_id"]
        status = evalfleet(["status", str(run_id), "--json"], env, tmp_path)
        watcher = RunWatcher(postgres_url)
        items = watcher.items(run_id)
        watcher.close()
    summary = json.loads(status.stdout)
    # Then the first stories were asked and answered with both models, the last one not at
    # all: its items failed with the budget as their reason
    done = {i.story_id for i in items if i.state == "done"}
    failed = [i for i in items if i.state == "failed"]
    assert done and failed and all(i.last_error.startswith("budget of $0.035: not submitted")
                                   for i in failed), [i.last_error for i in items]  # fmt: skip
    assert {i.story_id for i in failed}.isdisjoint(done)
    assert max(done) < min(i.story_id for i in failed)
    assert {(i.model_label, i.story_id) for i in items if i.state == "done"} == {
        (label, story) for label in ("base", "finetuned") for story in done
    }
    # And what the run cost stays within its budget
    assert 0 < summary["progress"]["cost_usd"] <= 0.035
    # And status --json gives the batches' figures per model, as its table does
    answered = {label: m["answered"] for label, m in summary["models"].items()}
    assert summary["batches"].keys() == {"base", "finetuned"}
    for label, figures in summary["batches"].items():
        assert figures["batches"] == figures["submitted"] == figures["completed"] >= 1
        assert figures["requests"] == figures["answered"] == answered[label] > 0
        assert (figures["failed"], figures["retried"]) == (0, 0)
    assert stats["lines_answered"] == sum(answered.values())
