"""Batch rows and their submission (docs/architecture.md, D10), on SQLite and a real local
simulator: a resumed submission never creates a second batch, one poller at a time holds a
batch, its outcomes are stored once, and a batched item is no synchronous delivery's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import together
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from unit.schema.test_lifecycle import a_run

from evalfleet.schema import lifecycle
from evalfleet.schema.db import session_scope
from evalfleet.schema.models import Batch, BatchState, Item, ItemState, Run, utcnow
from evalfleet.schema.payloads import RunConfig
from evalfleet.schema.settings import Settings
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.server import SimServer
from evalfleet.workers.batch.requests import open_lines
from evalfleet.workers.batch.submit import Limits, ensure_submitted, record_parts, upload
from evalfleet.workers.delivery import start_delivery


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig()) as server:
        yield server


def created(sim: SimServer) -> int:
    return int(httpx.get(f"{sim.base_url}/sim/batch-stats").json()["batches_created"])


def one_batch(sessions: sessionmaker[Session], run_id: int) -> int:
    with session_scope(sessions) as session:
        config = RunConfig.model_validate(session.get_one(Run, run_id).config)
        lines = open_lines(session, run_id, "base", config)
        (batch_id,) = record_parts(session, run_id, "base", lines, Limits(100, 10**6), 1, "p")
    return batch_id


def client_of(sim: SimServer) -> together.Together:
    return together.Together(api_key="unit", base_url=sim.base_url, max_retries=0)


def test_a_recorded_batch_is_created_once_however_often_its_submission_is_resumed(
    tmp_path: Path, sim: SimServer
) -> None:
    # Given a batch row recorded before anything was uploaded
    sessions, run_id, _ = a_run(tmp_path)
    batch_id = one_batch(sessions, run_id)
    # When its submission runs, and runs again (a resumed producer or poller)
    first = ensure_submitted(sessions, client_of(sim), batch_id)
    second = ensure_submitted(sessions, client_of(sim), batch_id)
    # Then the provider made one batch, and the row names it
    with sessions() as session:
        row = session.get_one(Batch, batch_id)
    assert (first, second) == (True, True) and created(sim) == 1
    assert row.state == BatchState.SUBMITTED.value and row.provider_id


def test_a_batch_created_before_a_kill_but_never_recorded_is_adopted_not_created_again(
    tmp_path: Path, sim: SimServer
) -> None:
    # Given a row whose file was uploaded and whose batch was created, then the process died
    # before it recorded the batch's id
    sessions, run_id, _ = a_run(tmp_path)
    batch_id = one_batch(sessions, run_id)
    client = client_of(sim)
    with sessions() as session:
        config = RunConfig.model_validate(session.get_one(Run, run_id).config)
        lines = open_lines(session, run_id, "base", config)
    file_id = upload(client, batch_id, lines)
    with session_scope(sessions) as session:
        lifecycle.note_input_file(session, batch_id, file_id)
    job = client.batches.create(endpoint="/v1/chat/completions", input_file_id=file_id).job
    assert job is not None
    # When the submission is resumed
    ensure_submitted(sessions, client, batch_id)
    # Then it adopted that batch
    with sessions() as session:
        assert session.get_one(Batch, batch_id).provider_id == job.id
    assert created(sim) == 1


def test_one_poller_holds_a_batch_until_its_lease_ends_and_its_end_is_stored_once(
    tmp_path: Path,
) -> None:
    sessions, run_id, _ = a_run(tmp_path)
    batch_id = one_batch(sessions, run_id)
    now = utcnow()
    with session_scope(sessions) as session:
        # Given a poller holding the batch
        first = lifecycle.take_poll(session, batch_id, "a", 10.0, now)
        # Then a second chain cannot take it while the lease lasts, the holder can renew it,
        # and after the lease the second can
        second = lifecycle.take_poll(session, batch_id, "b", 10.0, now)
        renewed = lifecycle.take_poll(session, batch_id, "a", 10.0, now)
        later = lifecycle.take_poll(session, batch_id, "b", 10.0, now + timedelta(seconds=11))
        # And of two pollers finishing it, one does
        ends = [
            lifecycle.finish_batch(session, batch_id, BatchState.DONE, "COMPLETED", 1, 0, None)
            for _ in range(2)
        ]
        closed_poll = lifecycle.take_poll(session, batch_id, "c", 10.0, now + timedelta(days=1))
    assert (first, second, renewed, later) == (True, False, True, True)
    assert ends == [True, False] and closed_poll is False


def test_a_batched_item_is_left_to_its_batch_by_a_synchronous_delivery(tmp_path: Path) -> None:
    # Given an item whose questions are in a batch
    sessions, _run_id, (item, *_) = a_run(tmp_path)
    with session_scope(sessions) as session:
        lifecycle.hold_for_batch(session, [item])
    # When a message for it arrives anyway
    delivery = start_delivery(sessions, item, Settings(EVALFLEET_LEASE_S=60.0))
    # Then nothing is asked and it stays batched (open: the run is not over)
    with sessions() as session:
        state = session.scalar(select(Item.state).where(Item.id == item))
    assert delivery.work is None and delivery.retry_in_s is None
    assert state == ItemState.BATCHED.value
