"""Create a run, enqueue it, and (when asked, or on the embedded default) wait for its end."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from celery import Celery
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.embedded import EmbeddedRedis
from evalfleet.fleet import WorkerFleet, child_env
from evalfleet.flower import LocalFlower
from evalfleet.producer.create_run import create_run
from evalfleet.producer.dataset import Dataset
from evalfleet.producer.enqueue import enqueue_pending
from evalfleet.schema.errors import ConfigurationError, EvalfleetError
from evalfleet.schema.payloads import RunConfig, RunMode
from evalfleet.schema.settings import Settings
from evalfleet.services import open_broker, open_database
from evalfleet.waiting import wait_for_run

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalCluster:
    """How many local workers the embedded default starts, and their threads."""

    workers: int = 2
    concurrency: int = 8
    log_dir: Path = Path(".evalfleet/logs")
    flower: bool = False  # a Flower beside them, on loopback


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    state: str | None  # None when not waited for


@contextlib.contextmanager
def broker_for(
    settings: Settings, local: LocalCluster, console: Console
) -> Iterator[tuple[Celery, WorkerFleet | None]]:
    """The configured broker; without one, an embedded Redis with local workers on it."""
    if settings.broker_url:
        yield open_broker(settings, settings.broker_url), None
        return
    with EmbeddedRedis() as redis, contextlib.ExitStack() as flower:
        if local.flower:  # before the workers, so that it sees them come online
            env = child_env({"EVALFLEET_BROKER_URL": redis.url})
            url = flower.enter_context(LocalFlower(env, local.log_dir)).url
            console.print(f"Flower on {url} (until this run ends)")
        env = {
            "EVALFLEET_BROKER_URL": redis.url,
            "EVALFLEET_DATABASE_URL": settings.effective_database_url,
            "EVALFLEET_QUEUE": settings.queue,
        }
        if settings.together_base_url:
            env["TOGETHER_BASE_URL"] = settings.together_base_url
        if local.flower:  # Flower shows every task, from the first
            env["EVALFLEET_TASK_EVENTS"] = "true"
        # The user's own settings (an API key, a limiter's rate) reach the workers too.
        fleet = WorkerFleet(local.workers, local.concurrency, child_env(env), local.log_dir)
        with fleet as workers:
            yield open_broker(settings, redis.url), workers


def check_local(settings: Settings, local: LocalCluster) -> None:
    """Refuse options of the embedded default that a configured broker cannot honour."""
    if local.flower and settings.broker_url:
        raise ConfigurationError(
            "--flower starts Flower beside the embedded default's workers; with "
            "EVALFLEET_BROKER_URL set, `evalfleet flower` watches the cluster"
        )


def submit_batches(
    celery: Celery, sessions: sessionmaker[Session], settings: Settings, config: RunConfig,
    run_id: int,
) -> int:  # fmt: skip
    """Batch mode: the producer uploads and creates the batches (docs/architecture.md, D10)."""
    # The `together` SDK only here: a synchronous producer never loads it.
    from evalfleet.producer.batch_submit import submit_run
    from evalfleet.workers.api import make_client

    client = make_client(settings, config.base_url, connections=2)
    return submit_run(celery, sessions, settings, client, run_id)


def execute_run(
    settings: Settings,
    dataset: Dataset,
    config: RunConfig,
    wait: bool,
    console: Console,
    local: LocalCluster,
) -> RunOutcome:
    # Everything that can be refused is checked before the first row is written.
    settings.api_key_for(config.base_url)
    check_local(settings, local)
    sessions = open_database(settings, migrate=True)
    with broker_for(settings, local, console) as (celery, workers):
        run_id = create_run(sessions, dataset, config)
        if config.mode is RunMode.BATCH:
            queued = (
                f"{submit_batches(celery, sessions, settings, config, run_id)} batches submitted"
            )
        else:
            sent = enqueue_pending(
                celery, sessions, run_id, questions_per_message=settings.questions_per_message
            )
            queued = f"{sent} items queued"
        judged = f", graded by {config.judge.model}" if config.judge is not None else ""
        console.print(
            f"run {run_id}: {len(dataset.stories)} stories, {dataset.question_count} questions, "
            f"{len(config.models)} models{judged}, {queued}"
        )
        if not wait and workers is None:
            return RunOutcome(run_id, None)
        # The embedded default always waits: its broker and workers end with this command.
        tick = workers.check_alive if workers is not None else (lambda: None)
        try:
            state = wait_for_run(sessions, celery, run_id, console, on_tick=tick)
        except KeyboardInterrupt:
            where = (
                "the embedded workers stopped; its answers are kept"
                if workers is not None
                else f"the workers go on: `evalfleet status {run_id}`"
            )
            raise EvalfleetError(f"interrupted while waiting for run {run_id}: {where}") from None
        return RunOutcome(run_id, state)
