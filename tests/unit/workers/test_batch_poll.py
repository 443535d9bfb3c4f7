"""Polling a batch to its end (workers/batch/poll.py) on SQLite and a real local simulator:
each kind of error line is handled as the synchronous path handles that response, and a
batch is stored once however often it is polled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from unit.aggregator.simulated_run import database, tiny_dataset
from unit.schema.test_lifecycle import STORIES

from evalfleet.producer.create_run import create_run
from evalfleet.schema import lifecycle
from evalfleet.schema.db import make_engine, session_scope
from evalfleet.schema.models import Answer, Batch, Item, ItemState, Run
from evalfleet.schema.payloads import RunConfig
from evalfleet.schema.settings import Settings
from evalfleet.simulator.batches import BatchSimConfig
from evalfleet.simulator.config import DEMO_MODELS, SimConfig
from evalfleet.simulator.server import SimServer
from evalfleet.workers.batch.poll import Polled, poll_once
from evalfleet.workers.batch.requests import open_lines
from evalfleet.workers.batch.submit import Limits, record_parts
from evalfleet.workers.resources import Resources


def a_batch_run(
    tmp_path: Path, sim: SimServer, models: dict[str, str] = DEMO_MODELS
) -> tuple[Resources, int, list[int]]:
    """A run whose every question is in one batch row per model, not submitted yet."""
    url, sessions = database(tmp_path)
    config = RunConfig(models=models, base_url=sim.base_url)
    run_id = create_run(sessions, tiny_dataset(STORIES), config)
    batch_ids = []
    with session_scope(sessions) as session:
        for label in models:
            lines = open_lines(session, run_id, label, config)
            batch_ids += record_parts(session, run_id, label, lines, Limits(100, 10**6), 1, "p")
        items = list(session.scalars(select(Item.id).where(Item.run_id == run_id)))
        lifecycle.hold_for_batch(session, items)
    settings = Settings(EVALFLEET_DATABASE_URL=url, EVALFLEET_TASK_MAX_RETRIES=1)
    resources = Resources(settings, make_engine(url), sessions, concurrency=2, redis=None)
    return resources, run_id, batch_ids


def poll_to_end(resources: Resources, batch_id: int) -> Polled:
    for _ in range(20):
        polled = poll_once(resources, batch_id, "unit")
        if polled.again_in_s is None:
            return polled
    raise AssertionError(f"batch {batch_id} did not end")


def item_states(sessions: sessionmaker[Session], run_id: int) -> dict[str, set[str]]:
    with sessions() as session:
        rows = session.execute(
            select(Item.model_label, Item.state, Item.last_error).where(Item.run_id == run_id)
        )
        states: dict[str, set[str]] = {}
        for label, state, error in rows:
            states.setdefault(label, set()).add(f"{state}: {error}" if error else state)
        return states


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[SimServer]:
    batch = getattr(request, "param", BatchSimConfig(completion_delay_s=0.0))
    with SimServer(SimConfig(), batch) as server:
        yield server


def test_a_completed_batch_is_stored_once_however_often_it_is_polled(
    tmp_path: Path, sim: SimServer
) -> None:
    resources, run_id, (base, finetuned) = a_batch_run(tmp_path, sim)
    # When both batches are polled to their end, and the first once more
    ends = [poll_to_end(resources, base), poll_to_end(resources, finetuned)]
    again = poll_once(resources, base, "another chain")
    # Then every question has one answer, every item is done, and the run can be aggregated
    with resources.sessions() as session:
        answers = session.scalar(select(func.count()).select_from(Answer))
    assert answers == 2 * 2 and all(not e.new_batches for e in ends)
    assert item_states(resources.sessions, run_id) == {"base": {"done"}, "finetuned": {"done"}}
    assert again == Polled(run_id) and lifecycle.claim_aggregation(resources.sessions, run_id)


@pytest.mark.parametrize(
    "sim", [BatchSimConfig(completion_delay_s=0.0, error_share=1.0, error_status=400)],
    indirect=True,
)  # fmt: skip
def test_a_400_line_is_that_questions_stored_error_and_its_item_ends(
    tmp_path: Path, sim: SimServer
) -> None:
    resources, run_id, (base, _) = a_batch_run(tmp_path, sim)
    poll_to_end(resources, base)
    with resources.sessions() as session:
        errors = set(session.scalars(select(Answer.error).where(Answer.model_label == "base")))
    assert errors == {"batch error (400): simulated batch line failure"}
    assert item_states(resources.sessions, run_id)["base"] == {"done"}


@pytest.mark.parametrize(
    "sim", [BatchSimConfig(completion_delay_s=0.0, error_share=1.0, error_status=401)],
    indirect=True,
)  # fmt: skip
def test_a_401_line_stops_the_run_with_one_message(tmp_path: Path, sim: SimServer) -> None:
    resources, run_id, (base, _) = a_batch_run(tmp_path, sim)
    poll_to_end(resources, base)
    with resources.sessions() as session:
        run = session.get_one(Run, run_id)
    assert run.state == "failed"
    assert run.error == "the API refused the key: batch error (401): simulated batch line failure"


def test_a_line_for_a_model_the_api_does_not_know_fails_that_model_only(
    tmp_path: Path, sim: SimServer
) -> None:
    models = {"base": DEMO_MODELS["base"], "typo": "evalfleet/sim-bsae"}
    resources, run_id, (base, typo) = a_batch_run(tmp_path, sim, models)
    poll_to_end(resources, typo)
    poll_to_end(resources, base)
    states = item_states(resources.sessions, run_id)
    assert states["base"] == {"done"}
    (typo_state,) = states["typo"]
    assert typo_state.startswith("failed: model not found: evalfleet/sim-bsae: batch error (404)")


@pytest.mark.parametrize(
    "sim", [BatchSimConfig(completion_delay_s=0.0, error_share=1.0, error_status=503)],
    indirect=True,
)  # fmt: skip
def test_transient_lines_go_into_a_retry_batch_then_fail_their_items(
    tmp_path: Path, sim: SimServer
) -> None:
    # Given one retry round (EVALFLEET_TASK_MAX_RETRIES=1) and a provider failing every line
    resources, run_id, (base, _) = a_batch_run(tmp_path, sim)
    # When the batch ends, its retry is recorded; when the retry ends, the items fail
    (retry,) = poll_to_end(resources, base).new_batches
    last = poll_to_end(resources, retry)
    with resources.sessions() as session:
        rounds = [
            b.round for b in session.scalars(select(Batch).where(Batch.model_label == "base"))
        ]
    assert rounds == [1, 2] and not last.new_batches
    assert item_states(resources.sessions, run_id)["base"] == {
        "failed: failed after 2 batches: batch error (503): simulated batch line failure"
    }


def test_a_batch_the_provider_lost_is_asked_again_in_a_new_batch(
    tmp_path: Path, sim: SimServer
) -> None:
    # Given a submitted batch whose provider id the provider does not know (any more)
    resources, _run_id, (base, _) = a_batch_run(tmp_path, sim)
    with session_scope(resources.sessions) as session:
        lifecycle.mark_submitted(session, base, "batch-gone", "IN_PROGRESS")
    # When it is polled, its questions go into a retry batch, which is then answered
    (retry,) = poll_to_end(resources, base).new_batches
    poll_to_end(resources, retry)
    with resources.sessions() as session:
        lost = session.get_one(Batch, base)
        answered = session.scalar(
            select(func.count()).where(Answer.model_label == "base", Answer.text.is_not(None))
        )
    assert lost.provider_status is not None and lost.provider_status.startswith("lost: ")
    assert answered == 2


@pytest.mark.parametrize("sim", [BatchSimConfig(completion_delay_s=0.3)], indirect=True)
def test_an_answer_a_batch_brings_for_an_item_failed_meanwhile_is_stored(
    tmp_path: Path, sim: SimServer
) -> None:
    # Given an item whose questions went in two batches, one question each
    url, sessions = database(tmp_path)
    config = RunConfig(models={"base": DEMO_MODELS["base"]}, base_url=sim.base_url)
    two_turns = {
        "s0": ("wikipedia", "Tom had a black cat.", [("Who?", "Tom"), ("Color?", "black")])
    }
    run_id = create_run(sessions, tiny_dataset(two_turns), config)
    with session_scope(sessions) as session:
        lines = open_lines(session, run_id, "base", config)
        _first, second = record_parts(session, run_id, "base", lines, Limits(1, 10**6), 1, "p")
        item = lines[0].item_id
        assert lines[1].item_id == item
        lifecycle.hold_for_batch(session, [item])
    settings = Settings(EVALFLEET_DATABASE_URL=url, EVALFLEET_TASK_MAX_RETRIES=1)
    resources = Resources(settings, make_engine(url), sessions, concurrency=2, redis=None)
    # When the second batch is submitted, the first's question fails for good (its item
    # fails), and then the second ends
    assert poll_once(resources, second, "unit").again_in_s is not None  # submitted, running
    with session_scope(sessions) as session:
        lifecycle.close_items(session, Item.id == item, ItemState.FAILED, "failed after 2")
    time.sleep(0.4)
    poll_to_end(resources, second)
    # Then the second batch's answer is stored, and the item keeps its failure
    with sessions() as session:
        turns = list(session.scalars(select(Answer.turn).where(Answer.text.is_not(None))))
        state = session.scalar(select(Item.state).where(Item.id == item))
    assert turns == [lines[1].turn] and state == ItemState.FAILED.value
