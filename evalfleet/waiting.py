"""Wait for a run to end, with a progress bar, sweeping up a lost aggregation on the way."""

from __future__ import annotations

import time
from collections.abc import Callable

from celery import Celery
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from schema.models import Answer, Item, Question, Run, RunState, Story
from schema.payloads import AGGREGATE_RUN_TASK
from workers.completion import claim_aggregation

POLL_S = 0.5
AGGREGATION_GRACE_S = 60.0  # re-send the aggregation if it has not finished by then
FINAL_STATES = (RunState.DONE.value, RunState.FAILED.value)


def wait_for_run(
    sessions: sessionmaker[Session],
    celery: Celery,
    run_id: int,
    console: Console,
    on_tick: Callable[[], None] = lambda: None,
) -> str:
    """Block until the run is done or failed; returns its final state."""
    with sessions() as session:
        per_model = session.scalar(
            select(func.count()).select_from(Question).join(Story).where(Story.run_id == run_id)
        )
        models = session.scalar(
            select(func.count(func.distinct(Item.model_label))).where(Item.run_id == run_id)
        )
    total = int(per_model or 0) * int(models or 0)
    columns = (
        TextColumn("run {task.fields[run_id]} {task.fields[state]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("answers"),
        TimeRemainingColumn(),
    )
    aggregating_since: float | None = None
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("answers", total=total, run_id=run_id, state="running")
        while True:
            on_tick()
            with sessions() as session:
                state = session.scalar(select(Run.state).where(Run.id == run_id)) or ""
                done = session.scalar(
                    select(func.count()).select_from(Answer).where(Answer.run_id == run_id)
                )
            progress.update(task, completed=int(done or 0), state=state)
            if state in FINAL_STATES:
                return state
            if state == RunState.RUNNING.value and claim_aggregation(sessions, run_id):
                # Every item ended but no worker claimed the aggregation (a crash between its
                # commit and its enqueue): claim it here.
                celery.send_task(AGGREGATE_RUN_TASK, args=[run_id])
            if state == RunState.AGGREGATING.value:
                aggregating_since = aggregating_since or time.monotonic()
                if time.monotonic() - aggregating_since > AGGREGATION_GRACE_S:
                    celery.send_task(AGGREGATE_RUN_TASK, args=[run_id])  # idempotent
                    aggregating_since = time.monotonic()
            time.sleep(POLL_S)
