"""Helpers for integration tests: run the CLI, the environment of a fleet, a simulator with
workers on a migrated database, watch a run in SQL (the workers themselves:
evalfleet.fleet.WorkerFleet)."""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from evalfleet.fleet import WorkerFleet, child_env, evalfleet_command
from evalfleet.schema.models import Answer, Item, Run
from evalfleet.simulator.batches import BatchSimConfig
from evalfleet.simulator.config import DEMO_MODELS, SimConfig
from evalfleet.simulator.server import SimServer

MODELS = DEMO_MODELS
# simulated_fleet with the test's database, broker, queue and folder given (conftest.py).
SimulatedFleet = Callable[
    ..., contextlib.AbstractContextManager[tuple[SimServer, dict[str, str], WorkerFleet]]
]


def evalfleet(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> Any:
    """Run the CLI as a user would; returns the completed process."""
    return subprocess.run(
        evalfleet_command(*args),
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def clean_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without any evalfleet or Together settings."""
    return child_env(overrides, clean=True)


def fleet_env(
    database_url: str, broker_url: str, queue: str, base_url: str, **overrides: str
) -> dict[str, str]:
    """The environment of every process of one fleet: database, broker, queue and API."""
    return clean_env(
        EVALFLEET_DATABASE_URL=database_url, EVALFLEET_BROKER_URL=broker_url,
        EVALFLEET_QUEUE=queue, TOGETHER_BASE_URL=base_url, **overrides,
    )  # fmt: skip


@contextlib.contextmanager
def simulated_fleet(
    database_url: str, broker_url: str, queue: str, folder: Path, *, workers: int = 1,
    concurrency: int = 4, batch: BatchSimConfig | None = None, **settings: str,
) -> Iterator[tuple[SimServer, dict[str, str], WorkerFleet]]:  # fmt: skip
    """The simulator (serving batches too with `batch`), the fleet's environment on it with
    `settings`, the database upgraded by the CLI, and `workers` worker processes of
    `concurrency` each, logging under folder/logs. The simulator stops after the workers; its
    stats() still read afterwards."""
    with SimServer(SimConfig(), batch) as server:
        env = fleet_env(database_url, broker_url, queue, server.base_url, **settings)
        assert evalfleet(["db", "upgrade"], env, folder).returncode == 0
        with WorkerFleet(workers, concurrency, env, folder / "logs") as fleet:
            yield server, env, fleet


def run_args(dataset: Path, *extra: str, models: dict[str, str] = MODELS) -> list[str]:
    return [
        "run", "--dataset", str(dataset), "--base", models["base"],
        "--finetuned", models["finetuned"], *extra,
    ]  # fmt: skip


class RunWatcher:
    """Reads a run's progress straight from the database."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url)

    def state(self, run_id: int) -> str:
        with Session(self.engine) as session:
            return session.get_one(Run, run_id).state

    def answers(self, run_id: int) -> int:
        with Session(self.engine) as session:
            statement = select(func.count()).select_from(Answer).where(Answer.run_id == run_id)
            return int(session.scalar(statement) or 0)

    def run(self, run_id: int) -> Run:
        with Session(self.engine) as session:
            return session.get_one(Run, run_id)

    def items(self, run_id: int) -> list[Item]:
        with Session(self.engine) as session:
            return list(session.scalars(select(Item).where(Item.run_id == run_id)))

    def wait_for(self, run_id: int, states: tuple[str, ...] = ("done", "failed"),
                 timeout: float = 180) -> str:  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(run_id)
            if state in states:
                return state
            time.sleep(0.3)
        raise AssertionError(f"run {run_id} still {self.state(run_id)} after {timeout}s")

    def wait_for_answers(self, run_id: int, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.answers(run_id) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id}: fewer than {count} answers after {timeout}s")
            time.sleep(0.1)

    def close(self) -> None:
        self.engine.dispose()


def scrape(port: int) -> str:
    """A worker's /metrics text (evalfleet worker --metrics-port)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def logs(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in folder.rglob("*.log"))
