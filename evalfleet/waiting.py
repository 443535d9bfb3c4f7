"""Wait for a run to end, with a progress bar, recovering a lost aggregation on the way."""

from __future__ import annotations

import time
from collections.abc import Callable

from celery import Celery
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.aggregator.health import troubled_models
from evalfleet.schema.models import Answer, Item, Question, Run, RunState, Story
from evalfleet.workers.reconcile import recover_aggregation

POLL_S = 0.5
RECOVERY_EVERY_S = 5.0
HEALTH_EVERY_S = 2.0
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
        samples = session.scalar(
            select(func.count(func.distinct(Item.sample))).where(Item.run_id == run_id)
        )
    # One answer row per question, model and sample (--samples K).
    total = int(per_model or 0) * int(models or 0) * int(samples or 0)
    columns = (
        TextColumn("run {task.fields[run_id]} {task.fields[state]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("answers"),
        TimeRemainingColumn(),
    )
    next_recovery = time.monotonic() + RECOVERY_EVERY_S
    health = HealthReporter(console)
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("answers", total=total, run_id=run_id, state="running")
        outage = DatabaseOutage(console)
        while True:
            on_tick()
            try:
                with sessions() as session:
                    state = session.scalar(select(Run.state).where(Run.id == run_id)) or ""
                    done = session.scalar(
                        select(func.count()).select_from(Answer).where(Answer.run_id == run_id)
                    )
                    health.check(session, run_id, state)
            except OperationalError as exc:
                # A database restart or a network cut: the run goes on in the workers
                # (D1: SQL holds it), so wait for the database instead of dying.
                outage.lost(exc)
                time.sleep(POLL_S)
                continue
            outage.back()
            progress.update(task, completed=int(done or 0), state=state)
            if state in FINAL_STATES:
                return state
            if time.monotonic() >= next_recovery:
                # The same recovery the workers' sweep makes, for a cluster without a sweep.
                recover_aggregation(celery, sessions, run_id)
                next_recovery = time.monotonic() + RECOVERY_EVERY_S
            time.sleep(POLL_S)


class DatabaseOutage:
    """Says once when the database stops answering the wait, and once when it is back."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.down = False

    def lost(self, exc: OperationalError) -> None:
        if not self.down:
            cause = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            self.console.print(f"database unreachable ({cause}); waiting for it")
            self.down = True

    def back(self) -> None:
        if self.down:
            self.console.print("database back; the run goes on")
            self.down = False


class HealthReporter:
    """Says above the bar when a model's requests start or stop failing all the same way
    (aggregator/health.py): once per change, so a log of the output reads as a history."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.shown: dict[str, str] = {}  # label -> the line on screen
        self.next_check = 0.0

    def check(self, session: Session, run_id: int, state: str) -> None:
        if state != RunState.RUNNING.value or time.monotonic() < self.next_check:
            return  # a run that ended says how in its report
        self.next_check = time.monotonic() + HEALTH_EVERY_S
        lines = {t.label: t.line for t in troubled_models(session, run_id)}
        for label, line in lines.items():
            if self.shown.get(label) != line:
                self.console.print(line, style="bold red", markup=False, highlight=False)
        for label in self.shown.keys() - lines.keys():
            self.console.print(f"{label}: answering again", markup=False, highlight=False)
        self.shown = lines
