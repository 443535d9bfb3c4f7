"""`run --wait` lives through a database restart: it says so and waits, and ends with the run
(evalfleet/waiting.py; docs/architecture.md, D1)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from unit.aggregator.simulated_run import database, tiny_dataset

from evalfleet.producer.create_run import create_run
from evalfleet.schema.models import Run, RunState
from evalfleet.schema.payloads import RunConfig
from evalfleet.waiting import wait_for_run

STORIES = {"s1": ("wikipedia", "Story.", [("Question?", "yes")])}


class Celery:
    """Nothing is sent in this test: the run is done before any recovery is due."""


def test_a_lost_database_is_waited_for_and_the_run_ends(tmp_path: Path) -> None:
    # Given a running run, and a database that, once the wait has read the run's size,
    # refuses three connections
    _url, sessions = database(tmp_path)
    run_id = create_run(sessions, tiny_dataset(STORIES), RunConfig(models={"base": "m"}))
    calls = iter(range(1000))

    def flaky() -> Session:
        if 1 <= next(calls) <= 3:
            raise OperationalError("connect", {}, Exception("connection refused"))
        return sessions()

    ticks = iter(range(1000))

    def finish_after_the_outage() -> None:
        if next(ticks) == 4:  # the tick after the outage ends the run
            with sessions.begin() as session:
                session.execute(update(Run).values(state=RunState.DONE.value))

    out = io.StringIO()
    # When run --wait polls it
    state = wait_for_run(
        flaky,  # type: ignore[arg-type]  # called like a sessionmaker
        Celery(),  # type: ignore[arg-type]
        run_id,
        Console(file=out, width=100),
        on_tick=finish_after_the_outage,
    )
    # Then it said once that the database was gone and once that it was back, and ended
    text = out.getvalue()
    assert state == RunState.DONE.value
    assert text.count("database unreachable (connection refused)") == 1
    assert text.count("database back") == 1
