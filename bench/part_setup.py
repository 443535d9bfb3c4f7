"""What every part shares: the options, and a warm fleet on a fresh database."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sim_process import Sim
from timed_fleet import TimedFleet
from workload import build_dataset

from evalfleet.scratch_database import fresh_database

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
UNLIMITED_RPM = 1_000_000


@dataclass(frozen=True)
class Setup:
    """Shared options of every part."""

    log_dir: Path
    data_dir: Path
    stories: int
    turns: int
    workers: int
    concurrency: int
    latency_ms: float
    unlimit: str  # "flag": --rpm 1000000 on each run; "env": EVALFLEET_INITIAL_RPM for workers

    def unlimited_env(self) -> dict[str, str]:
        return {"EVALFLEET_INITIAL_RPM": str(UNLIMITED_RPM)} if self.unlimit == "env" else {}

    def unlimited_options(self) -> tuple[str, ...]:
        return ("--rpm", str(UNLIMITED_RPM)) if self.unlimit == "flag" else ()

    def dataset(self, stories: int, turns: int) -> Path:
        path = self.data_dir / f"coqa-{stories}x{turns}.jsonl"
        return path if path.exists() else build_dataset(path, stories, turns)


@contextlib.contextmanager
def fleet_on(
    setup: Setup, tag: str, count: int, concurrency: int, extra_env: dict[str, str] | None = None
) -> Iterator[TimedFleet]:
    keep = bool(os.environ.get("BENCH_KEEP_DB"))
    with fresh_database(PG_ADMIN, f"evalfleet_bench_{tag}_", keep) as database:
        fleet = TimedFleet(database, setup.log_dir, count, concurrency, extra_env)
        try:
            fleet.start()
            yield fleet
        finally:
            fleet.stop()


def warm_up(setup: Setup, fleet: TimedFleet, sim: Sim, *options: str) -> None:
    """A small run first: imports, DB and HTTP pools, Celery consumers all warm."""
    dataset = setup.dataset(fleet.count * fleet.concurrency, 2)
    fleet.submit(dataset, sim, "--no-cache", *options)
    sim.reset()


@contextlib.contextmanager
def warm_fleet(setup: Setup, tag: str, latency_ms: float) -> Iterator[tuple[Sim, TimedFleet]]:
    """A simulator at `latency_ms` and the setup's fleet on it, warmed up, requests unlimited."""
    sim = Sim(setup.log_dir, latency_ms)
    try:
        with fleet_on(setup, tag, setup.workers, setup.concurrency, setup.unlimited_env()) as fleet:
            warm_up(setup, fleet, sim, *setup.unlimited_options())
            yield sim, fleet
    finally:
        sim.stop()
