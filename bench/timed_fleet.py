"""A bench fleet: workers on a fresh database and queue, and runs submitted to it, timed."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

from measure import (
    CpuMeter,
    children_cpu_s,
    descendants,
    other_postgres_pids,
    postgres_backend_pids,
    processes_matching,
)
from run_sql import RunSql, RunTiming
from sim_process import Sim
from workload import MODELS

from evalfleet.fleet import WorkerFleet, child_env, evalfleet_command
from evalfleet.scratch_database import ScratchDatabase

REDIS_URL = "redis://127.0.0.1:6379/0"
POLL_S = 0.02
NO_API = "http://127.0.0.1:1"  # workers take the API URL from each run's config


class TimedFleet:
    """A fresh database and queue, `count` worker processes on them, and run submission."""

    def __init__(
        self,
        database: ScratchDatabase,
        log_dir: Path,
        count: int,
        concurrency: int,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.database = database
        self.log_dir = log_dir
        self.count, self.concurrency = count, concurrency
        self.queue = f"evalfleet-bench-{uuid.uuid4().hex[:8]}"
        self.extra_env = extra_env or {}
        self.sql = RunSql(database)
        self.workers = WorkerFleet(
            count, concurrency, self.env(NO_API), log_dir, name=f"{self.queue}-"
        )

    def env(self, base_url: str) -> dict[str, str]:
        """Only the bench's settings: none from the environment it was started in."""
        settings = {
            "EVALFLEET_DATABASE_URL": self.database.url,
            "EVALFLEET_BROKER_URL": REDIS_URL,
            "EVALFLEET_QUEUE": self.queue,
            "TOGETHER_BASE_URL": base_url,
            **self.extra_env,
        }
        return child_env(settings, clean=True)

    def start(self) -> None:
        upgrade = evalfleet_command("db", "upgrade")
        subprocess.run(upgrade, env=self.env(NO_API), check=True, capture_output=True)
        self.workers.start()
        self.workers.wait_ready()

    def stop(self) -> None:
        self.workers.stop()
        self.sql.close()

    def worker_pids(self) -> list[int]:
        return [pid for worker in self.workers.pids() for pid in descendants(worker)]

    def meter(self, sim: Sim) -> CpuMeter:
        name = self.database.name
        return CpuMeter(
            {
                "workers": self.worker_pids,
                "simulator": sim.pids,
                "postgres_backends": lambda: postgres_backend_pids(name),
                "postgres_rest": lambda: other_postgres_pids(name),
                "redis": lambda: processes_matching(r"^redis-server 127\.0\.0\.1:6379"),
                "bench": lambda: [os.getpid()],
            }
        )

    def submit(self, dataset: Path, sim: Sim, *options: str, timeout: float = 900) -> RunTiming:
        """`evalfleet run --no-wait`, then poll SQL until the run is done; times the run."""
        after = self.sql.last_run_id()
        reconnects = self.sql.reconnects
        meter = self.meter(sim)
        commits_before = self.sql.commits()
        meter.start()
        reaped_before = children_cpu_s()
        started = time.time()
        command = evalfleet_command(
            "run",
            "--dataset",
            str(dataset),
            "--base",
            MODELS["base"],
            "--finetuned",
            MODELS["finetuned"],
            "--no-wait",
            *options,
        )
        producer = subprocess.Popen(
            command, env=self.env(sim.base_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        run_id, done_at = self._wait_done(after, producer, started + timeout)
        cpu = meter.stop()
        producer.communicate(timeout=60)
        # The producer has exited: its CPU time is in this process' reaped children's.
        cpu["producer_cpu_s"] = round(children_cpu_s() - reaped_before, 2)
        cpu["other_cpu_s"] = round(cpu["other_cpu_s"] - cpu["producer_cpu_s"], 2)
        timing = self.sql.timing(run_id, started, done_at, cpu)
        timing.postgres_lost = self.sql.reconnects - reconnects
        timing.transactions = self.sql.commits() - commits_before
        return timing

    def _wait_done(
        self, after: int, producer: subprocess.Popen[bytes], deadline: float
    ) -> tuple[int, float]:
        while time.time() < deadline:
            rows = self.sql.query(
                "SELECT id, state, error FROM runs WHERE id > %s ORDER BY id DESC LIMIT 1", after
            )
            row = rows[0] if rows else None
            if row is not None and row[1] == "done":
                return int(row[0]), time.time()
            if row is not None and row[1] == "failed":
                raise RuntimeError(f"run {row[0]} failed: {row[2]}")
            if producer.poll() not in (None, 0):
                raise RuntimeError(f"evalfleet run failed: {producer.communicate()[1].decode()}")
            time.sleep(POLL_S)
        raise RuntimeError(f"no run done within the timeout: see {self.log_dir}")
