"""Local `evalfleet worker` processes: the embedded default's, the benches' and the tests'
(docs/architecture.md, "Layout")."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from evalfleet.schema.errors import ServiceUnavailableError
from evalfleet.startstop import StartStop

logger = logging.getLogger(__name__)

# Settings a bench or a test gives its children itself, never from its own environment.
OURS = ("EVALFLEET_", "TOGETHER_")
READY = " ready."  # Celery's log line once a worker consumes
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def evalfleet_command(*args: str) -> list[str]:
    """The CLI run by this interpreter: the installed code, whatever PATH holds. `-P`: the
    current folder is not put on sys.path, so a source checkout there cannot shadow it."""
    return [sys.executable, "-P", "-m", "evalfleet.cli.main", *args]


def worker_command(
    concurrency: int, hostname: str, pool: str | None = None, metrics_port: int | None = None
) -> list[str]:
    args = ["worker", "--concurrency", str(concurrency), "--hostname", hostname]
    args += ["--pool", pool] if pool else []
    args += ["--metrics-port", str(metrics_port)] if metrics_port is not None else []
    return evalfleet_command(*args)


def child_env(settings: Mapping[str, str], *, clean: bool = False) -> dict[str, str]:
    """This process' environment with `settings` on top. `clean` first leaves out this
    process' own evalfleet and Together settings, so that a child has only those given."""
    inherited = {k: v for k, v in os.environ.items() if not (clean and k.startswith(OURS))}
    return {**inherited, **settings}


class Worker:
    """One `evalfleet worker` process named `name` (its Celery hostname `name@%h`), its
    output appended to `log_dir/name.log`, its Prometheus metrics on `metrics_port` if any."""

    def __init__(
        self,
        name: str,
        concurrency: int,
        env: Mapping[str, str],
        log_dir: Path,
        pool: str | None,
        metrics_port: int | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.metrics_port = metrics_port
        command = worker_command(concurrency, f"{name}@%h", pool, metrics_port)
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            # A log kept from an earlier run may already say "ready": only what follows counts.
            self._log_start = log.tell()
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def ready(self) -> bool:
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return READY in log.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the worker dies with its tasks unacknowledged."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> None:
        """SIGTERM, a warm shutdown: the worker finishes or hands back its tasks."""
        if self.alive():
            self.process.terminate()

    def reap(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """Its exit code, once exited; SIGKILLed when it takes longer than `timeout`."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        self.terminate()
        return self.reap(timeout)


class WorkerFleet(StartStop):
    """`count` workers sharing `env` (their whole environment: see `child_env`), named
    `name0`, `name1`, ... in the order started; with `metrics`, each serves its metrics on a
    free port of its own (`Worker.metrics_port`)."""

    def __init__(
        self,
        count: int,
        concurrency: int,
        env: Mapping[str, str],
        log_dir: Path,
        *,
        name: str = "local",
        pool: str | None = None,
        metrics: bool = False,
    ) -> None:
        self.count, self.concurrency = count, concurrency
        self.metrics = metrics
        self.env = dict(env)
        self.log_dir = log_dir
        self.name, self.pool = name, pool
        self.workers: list[Worker] = []
        self._started = 0  # a replacement never takes a killed worker's name

    def start(self) -> None:
        self.start_more(self.count)
        logger.info("started %s local workers, logs in %s", self.count, self.log_dir)

    def start_more(self, count: int = 1) -> list[Worker]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        started = []
        for _ in range(count):
            name = f"{self.name}{self._started}"
            port = free_port() if self.metrics else None
            started.append(Worker(name, self.concurrency, self.env, self.log_dir, self.pool, port))
            self._started += 1
        self.workers.extend(started)
        return started

    def kill(self, worker: Worker) -> None:
        """SIGKILL one worker; it leaves the fleet."""
        worker.kill()
        self.workers.remove(worker)

    def alive(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.alive()]

    def pids(self) -> list[int]:
        return [worker.pid for worker in self.workers]

    def check_alive(self) -> None:
        for worker in self.workers:
            code = worker.process.poll()
            if code is not None:
                raise ServiceUnavailableError(
                    f"a local worker exited with code {code}: see {self.log_dir}"
                )

    def wait_ready(self, timeout: float = 60) -> None:
        """Until every worker consumes (its log says so); fails when one exits first."""
        deadline = time.monotonic() + timeout
        while not all(worker.ready() for worker in self.workers):
            if time.monotonic() > deadline or len(self.alive()) < len(self.workers):
                raise ServiceUnavailableError(f"workers did not start: see {self.log_dir}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Warm shutdown of every worker at once, each SIGKILLed after STOP_TIMEOUT_S."""
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            worker.reap()
        self.workers.clear()
