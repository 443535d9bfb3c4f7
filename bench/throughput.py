"""Throughput of evalfleet on this machine, against the local simulator (DESIGN.md "Benchmarks").

    .venv/bin/python bench/throughput.py [--only efficiency,seed,rate_limit,cache,pipeline]

Real worker processes (`evalfleet worker`), the machine's Redis (a unique EVALFLEET_QUEUE
per part) and PostgreSQL (a fresh database per part), the simulator as an `evalfleet sim`
subprocess (its CPU does not share this process' GIL). Workers are started and warmed up by
a small run first; then a run is submitted with `evalfleet run --no-wait` and its database
polled until its state is `done`. Parts:

- efficiency: 50 stories x 15 turns x 2 models (gold, --no-cache), 2 workers x --concurrency
  32 (at most 64 requests in flight, both models together: `simulator_max_in_flight` shows
  it), 200 ms latency: ideal (requests x latency / concurrency) over the wall time from the
  run's row (written by the producer) to state `done`; `efficiency_from_command_start` also
  counts the `evalfleet run` process' start (~1 s of imports). The same requests from a bare
  pool of 64 threads give the machine's references: with the workers' own `together` call
  and warm clients (`bare_together_pool_efficiency`) and with plain httpx
  (`bare_httpx_pool_efficiency`). --rounds (3) rounds of the three, one after another on
  the same warm fleet: the figures are medians over the rounds (the machine is shared, and
  one run's efficiency moved by +-0.05 from run to run), `efficiency_range` the lowest and
  highest, `each_round` every round.
- seed: the same work through the seed notebook's protocol (bench/seed_protocol.py);
  speedup_vs_seed = its wall time / evalfleet's (the median efficiency run's).
- rate_limit: the simulator limits each model to 600/min, 3 workers, adaptive limiter from
  EVALFLEET_INITIAL_RPM's default, fresh limiter keys (a new simulator port): per model, the
  answers stored per minute over the run's middle 80% (run row .. last answer) / the limit,
  and the simulator's 429s / its requests.
- cache: the efficiency configuration twice with the cache on: API calls of the second run.
- pipeline: zero latency: answers stored per second (run row .. last answer), and the peak
  RSS (VmHWM) of the worker processes.

Each measured run also reports the transactions committed in its database and the CPU
seconds of each process group (workers, simulator,
this database's PostgreSQL backends, the rest of PostgreSQL, Redis, the producer, this
process, and the rest of the machine) to say what limited the figure. A part during which
PostgreSQL restarted (another benchmark's chaos) is measured again (--retries). Prints
progress lines starting with '#', then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from seed_protocol import run_seed_protocol

from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.schema.payloads import HistoryMode
from evalfleet.schema.settings import Settings
from evalfleet.simulator.config import DEMO_MODELS
from evalfleet.workers.api import complete, make_client
from evalfleet.workers.prompts import build_messages
from evalfleet.workers.resources import CONNECTIONS_PER_THREAD

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "coqa" / "coqa-validation-first20.jsonl"
MODELS = DEMO_MODELS
REDIS_URL = "redis://127.0.0.1:6379/0"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
UNLIMITED_RPM = 1_000_000
PARTS = ("efficiency", "seed", "rate_limit", "cache", "pipeline")
POLL_S = 0.02
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(message: str) -> None:
    print(f"# {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "evalfleet.cli.main", *args]


# --- data -----------------------------------------------------------------------------------


def build_dataset(out: Path, stories: int, turns: int) -> Path:
    """`stories` hub-schema records cycled from the 20-story sample, exactly `turns` questions
    each (a story's own questions repeated when it has fewer). Copies get a distinct id and a
    marked story text, so that no two requests of a run are identical (the cache sees no
    duplicates)."""
    sample = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    with out.open("w") as file:
        for index in range(stories):
            record = sample[index % len(sample)]
            copy = index // len(sample)
            picks = [i % len(record["questions"]) for i in range(turns)]
            answers = record["answers"]
            row = {
                "id": f"bench-{index}",
                "source": record["source"],
                "story": record["story"] + (f"\n\n(Copy {copy}.)" if copy else ""),
                "questions": [record["questions"][i] for i in picks],
                "answers": {key: [answers[key][i] for i in picks] for key in answers},
            }
            file.write(json.dumps(row) + "\n")
    return out


# --- CPU and memory from /proc ----------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def processes_matching(pattern: str) -> list[int]:
    """Pids whose command line matches `pattern` (postgres backends show their database)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if re.search(pattern, command):
                    pids.append(int(entry.name))
    return pids


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK, sum(values[:8]) / CLK_TCK


def peak_rss_mb(pids: Sequence[int]) -> float:
    """The largest VmHWM (peak resident set) among `pids`, in MB."""
    peak = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
            peak = max(peak, int(match.group(1)) if match else 0)
    return round(peak / 1024, 1)


class CpuMeter:
    """CPU seconds used by named process groups between start() and stop()."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self._before: dict[str, dict[int, float]] = {}
        self._machine = (0.0, 0.0)
        self._wall = 0.0

    def _sample(self) -> dict[str, dict[int, float]]:
        sample = {}
        for name, pids in self.groups.items():
            seconds = {pid: cpu_seconds(pid) for pid in pids()}
            sample[name] = {pid: s for pid, s in seconds.items() if s is not None}
        return sample

    def start(self) -> None:
        self._before = self._sample()
        self._machine = machine_cpu()
        self._wall = time.monotonic()

    def stop(self) -> dict[str, float]:
        after, (busy, total) = self._sample(), machine_cpu()
        wall = time.monotonic() - self._wall
        used = {
            name: sum(s - self._before.get(name, {}).get(pid, 0.0) for pid, s in pids.items())
            for name, pids in after.items()
        }
        machine_busy = busy - self._machine[0]
        result = {f"{name}_cpu_s": round(seconds, 2) for name, seconds in used.items()}
        result["other_cpu_s"] = round(machine_busy - sum(used.values()), 2)
        result["machine_busy_fraction"] = round(
            machine_busy / max(1e-9, total - self._machine[1]), 3
        )
        result["wall_s"] = round(wall, 2)
        return result


# --- services -------------------------------------------------------------------------------


class Sim:
    """`evalfleet sim` in its own process, on a fresh port (so fresh rate-limiter keys)."""

    def __init__(self, log_dir: Path, latency_ms: float, rpm: int | None = None) -> None:
        self.port = free_port()
        args = ["sim", "--port", str(self.port), "--latency-ms", f"{latency_ms:g}"]
        if rpm is not None:
            args += ["--rpm", str(rpm)]
        log = (log_dir / f"sim-{self.port}.log").open("wb")
        self.process = subprocess.Popen(cli(*args), stdout=log, stderr=subprocess.STDOUT)
        self.latency_s = latency_ms / 1000
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.base_url}/health", timeout=1).close()
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the simulator on port {self.port} did not start")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/sim/stats", timeout=5) as response:
            return dict(json.load(response))

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.base_url}/sim/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=5).close()

    def pids(self) -> list[int]:
        return [self.process.pid]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def admin(sql: str) -> None:
    """One statement as the admin user, retried while PostgreSQL restarts (another benchmark's
    chaos may restart it)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(sql.encode())
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@contextlib.contextmanager
def fresh_database(tag: str) -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL, libpq URL) of a new, empty database, dropped afterwards."""
    name = f"evalfleet_bench_{tag}"
    admin(f'CREATE DATABASE "{name}"')
    libpq = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield libpq.replace("postgresql://", "postgresql+psycopg://", 1), libpq
    finally:
        if not os.environ.get("BENCH_KEEP_DB"):
            admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class RunTiming:
    """One measured run, its times in seconds, from SQL (the same machine's clock)."""

    run_id: int
    command_to_done_s: float  # `evalfleet run` started -> state done seen in SQL
    created_to_done_s: float  # run row written by the producer -> state done
    cli_start_s: float  # `evalfleet run` started -> run row written (imports, loading)
    first_answer_s: float  # from the run row
    last_answer_s: float
    aggregation_s: float  # last item done -> state done seen
    answers: int
    answered: int
    api_calls: int
    rate_limited: int
    mean_client_latency_ms: float | None
    cpu: dict[str, float] = field(default_factory=dict)
    postgres_lost: int = 0  # the poller's connection dropped (PostgreSQL restarted): disturbed
    transactions: int = 0  # committed in this database during the run (pg_stat_database)


class Fleet:
    """A fresh database and queue, `count` worker processes on them, and run submission."""

    def __init__(
        self,
        database: tuple[str, str],
        log_dir: Path,
        count: int,
        concurrency: int,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.url, self.libpq = database
        self.db_name = self.libpq.rsplit("/", 1)[1]
        self.log_dir = log_dir
        self.count, self.concurrency = count, concurrency
        self.queue = f"evalfleet-bench-{uuid.uuid4().hex[:8]}"
        self.extra_env = extra_env or {}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.conn = psycopg.connect(self.libpq, autocommit=True)
        self.reconnects = 0  # PostgreSQL restarted under us (another benchmark's chaos)

    def env(self, base_url: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALFLEET_", "TOGETHER_"))}
        env.update(
            EVALFLEET_DATABASE_URL=self.url,
            EVALFLEET_BROKER_URL=REDIS_URL,
            EVALFLEET_QUEUE=self.queue,
            TOGETHER_BASE_URL=base_url,
            **self.extra_env,
        )
        return env

    def start(self) -> None:
        env = self.env("http://127.0.0.1:1")  # workers take the API URL from each run's config
        subprocess.run(cli("db", "upgrade"), env=env, check=True, capture_output=True)
        for index in range(self.count):
            log = self.log_dir / f"{self.queue}-worker-{index}.log"
            command = cli(
                "worker",
                "--concurrency",
                str(self.concurrency),
                "--hostname",
                f"{self.queue}-{index}@%h",
            )
            self.workers.append(
                subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
            )
        deadline = time.monotonic() + 60
        logs = [self.log_dir / f"{self.queue}-worker-{i}.log" for i in range(self.count)]
        while not all(" ready." in p.read_text(errors="replace") for p in logs):
            if time.monotonic() > deadline or any(w.poll() is not None for w in self.workers):
                raise RuntimeError(f"workers did not start: see {self.log_dir}")
            time.sleep(0.2)

    def worker_pids(self) -> list[int]:
        return [pid for w in self.workers for pid in descendants(w.pid)]

    def backend_pids(self) -> list[int]:
        """This database's backends ("postgres: 15/main: USER DB HOST(PORT) STATE")."""
        return processes_matching(rf"^postgres: (\S+: )?\S+ {re.escape(self.db_name)} ")

    def other_postgres_pids(self) -> list[int]:
        """The server's shared processes (WAL writer, checkpointer) and other databases'."""
        ours = set(self.backend_pids())
        every = processes_matching(r"^(postgres: |/usr/lib/postgresql/)")
        return [pid for pid in every if pid not in ours]

    def meter(self, sim: Sim) -> CpuMeter:
        return CpuMeter(
            {
                "workers": self.worker_pids,
                "simulator": sim.pids,
                "postgres_backends": self.backend_pids,
                "postgres_rest": self.other_postgres_pids,
                "redis": lambda: processes_matching(r"^redis-server 127\.0\.0\.1:6379"),
                "bench": lambda: [os.getpid()],
            }
        )

    def stop(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        self.conn.close()

    def last_run_id(self) -> int:
        return int(self.one("SELECT coalesce(max(id), 0) FROM runs")[0])

    def submit(self, dataset: Path, sim: Sim, *options: str, timeout: float = 900) -> RunTiming:
        """`evalfleet run --no-wait`, then poll SQL until the run is done; times the run."""
        after = self.last_run_id()
        reconnects = self.reconnects
        meter = self.meter(sim)
        commits_before = self.commits()
        meter.start()
        reaped_before = children_cpu_s()
        started = time.time()
        command = cli(
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
        timing = self._timing(run_id, started, done_at, cpu)
        timing.postgres_lost = self.reconnects - reconnects
        timing.transactions = self.commits() - commits_before
        return timing

    def _wait_done(
        self, after: int, producer: subprocess.Popen[bytes], deadline: float
    ) -> tuple[int, float]:
        while time.time() < deadline:
            rows = self.query(
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

    def commits(self) -> int:
        """Transactions committed in this database so far (statistics flushed first)."""
        time.sleep(1.1)  # backends flush their counters at most once a second
        return int(
            self.one("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", self.db_name)[0]
        )

    def one(self, sql: str, *params: Any) -> tuple[Any, ...]:
        rows = self.query(sql, *params)
        if not rows:
            raise RuntimeError(f"no row for {sql!r}")
        return rows[0]

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of `sql`; reconnects (for up to 60 s) when the server restarted meanwhile."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return [tuple(row) for row in self.conn.execute(sql, params).fetchall()]
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                self.reconnects += 1
                say(f"PostgreSQL connection lost ({self.reconnects}): reconnecting")
                time.sleep(0.5)
                with contextlib.suppress(psycopg.OperationalError):
                    self.conn = psycopg.connect(self.libpq, autocommit=True)

    def _timing(
        self, run_id: int, started: float, done_at: float, cpu: dict[str, float]
    ) -> RunTiming:
        (created,) = self.one(
            "SELECT extract(epoch FROM created_at) FROM runs WHERE id = %s", run_id
        )
        first, last, answers, answered, latency = self.one(
            "SELECT extract(epoch FROM min(created_at)), extract(epoch FROM max(created_at)),"
            " count(*), count(text), avg(latency_ms) FILTER (WHERE NOT cached)"
            " FROM answers WHERE run_id = %s",
            run_id,
        )
        calls, limited, items_done = self.one(
            "SELECT sum(api_calls), sum(rate_limited), extract(epoch FROM max(finished_at))"
            " FROM items WHERE run_id = %s",
            run_id,
        )
        created = float(created)
        return RunTiming(
            run_id=run_id,
            command_to_done_s=round(done_at - started, 3),
            created_to_done_s=round(done_at - created, 3),
            cli_start_s=round(created - started, 3),
            first_answer_s=round(float(first) - created, 3),
            last_answer_s=round(float(last) - created, 3),
            aggregation_s=round(done_at - float(items_done), 3),
            answers=int(answers),
            answered=int(answered),
            api_calls=int(calls or 0),
            rate_limited=int(limited or 0),
            mean_client_latency_ms=round(float(latency), 1) if latency is not None else None,
            cpu=cpu,
        )

    def answer_times(self, run_id: int) -> dict[str, list[float]]:
        """Epoch seconds of every stored answer, per model label."""
        rows = self.query(
            "SELECT model_label, extract(epoch FROM created_at) FROM answers"
            " WHERE run_id = %s AND text IS NOT NULL",
            run_id,
        )
        times: dict[str, list[float]] = {}
        for label, at in rows:
            times.setdefault(label, []).append(float(at))
        return times

    def run_created(self, run_id: int) -> float:
        return float(
            self.one("SELECT extract(epoch FROM created_at) FROM runs WHERE id = %s", run_id)[0]
        )


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
) -> Iterator[Fleet]:
    with fresh_database(f"{tag}_{uuid.uuid4().hex[:6]}") as database:
        fleet = Fleet(database, setup.log_dir, count, concurrency, extra_env)
        try:
            fleet.start()
            yield fleet
        finally:
            fleet.stop()


def warm_up(setup: Setup, fleet: Fleet, sim: Sim, *options: str) -> None:
    """A small run first: imports, DB and HTTP pools, Celery consumers all warm."""
    dataset = setup.dataset(fleet.count * fleet.concurrency, 2)
    fleet.submit(dataset, sim, "--no-cache", *options)
    sim.reset()


@contextlib.contextmanager
def warm_fleet(setup: Setup, tag: str, latency_ms: float) -> Iterator[tuple[Sim, Fleet]]:
    """A simulator at `latency_ms` and the setup's fleet on it, warmed up, requests unlimited."""
    sim = Sim(setup.log_dir, latency_ms)
    try:
        with fleet_on(setup, tag, setup.workers, setup.concurrency, setup.unlimited_env()) as fleet:
            warm_up(setup, fleet, sim, *setup.unlimited_options())
            yield sim, fleet
    finally:
        sim.stop()


# --- the parts ------------------------------------------------------------------------------


def bench_efficiency(setup: Setup, rounds: int) -> dict[str, Any]:
    """`rounds` rounds on one warm fleet, each an evalfleet run then the two bare pools on
    the same requests: the machine is shared, and a round's three figures see the same
    load. The headline figures are medians over the rounds; `timing` is the median run's."""
    dataset = setup.dataset(setup.stories, setup.turns)
    requests = setup.stories * setup.turns * len(MODELS)
    concurrency = setup.workers * setup.concurrency
    measured: list[dict[str, Any]] = []
    with warm_fleet(setup, "eff", setup.latency_ms) as (sim, fleet):
        ideal = requests * sim.latency_s / concurrency
        for index in range(rounds):
            sim.reset()
            timing = fleet.submit(dataset, sim, "--no-cache", *setup.unlimited_options())
            stats = sim.stats()
            bare_together_s = bare_pool_s(sim.base_url, dataset, concurrency, "together")
            bare_httpx_s = bare_pool_s(sim.base_url, dataset, concurrency, "httpx")
            measured.append(
                {
                    "efficiency": round(ideal / timing.created_to_done_s, 3),
                    "efficiency_from_command_start": round(ideal / timing.command_to_done_s, 3),
                    "efficiency_to_last_answer": round(ideal / timing.last_answer_s, 3),
                    "bare_together_pool_efficiency": round(ideal / bare_together_s, 3),
                    # What evalfleet's queue, database and limiter cost over the same SDK
                    # calls, same round.
                    "vs_bare_together_pool": round(bare_together_s / timing.created_to_done_s, 3),
                    "bare_httpx_pool_efficiency": round(ideal / bare_httpx_s, 3),
                    "simulator_requests": stats["requests_total"],
                    "simulator_max_in_flight": stats["max_in_flight"],
                    "timing": asdict(timing),
                }
            )
            say(
                f"efficiency round {index + 1}/{rounds}: {requests} requests, ideal {ideal:.2f}s,"
                f" run {timing.created_to_done_s}s, bare together pool {bare_together_s:.2f}s,"
                f" bare httpx pool {bare_httpx_s:.2f}s"
            )
        rss = peak_rss_mb(fleet.worker_pids())
    by_efficiency = sorted(measured, key=lambda r: float(r["efficiency"]))
    median_run = by_efficiency[(len(measured) - 1) // 2]
    figures = {
        key: median([float(r[key]) for r in measured])
        for key in (
            "efficiency",
            "efficiency_from_command_start",
            "efficiency_to_last_answer",
            "bare_together_pool_efficiency",
            "vs_bare_together_pool",
            "bare_httpx_pool_efficiency",
        )
    }
    return {
        "requests": requests,
        "concurrency": concurrency,
        "ideal_s": round(ideal, 3),
        "rounds": len(measured),
        **figures,
        "efficiency_range": [by_efficiency[0]["efficiency"], by_efficiency[-1]["efficiency"]],
        "simulator_max_in_flight": max(int(r["simulator_max_in_flight"]) for r in measured),
        "worker_rss_mb": rss,
        "timing": median_run["timing"],
        "each_round": measured,
    }


def median(values: Sequence[float]) -> float:
    return round(float(statistics.median(values)), 3)


def bare_pool_s(base_url: str, dataset: Path, threads: int, how: str) -> float:
    """Reference: wall time of the same gold-mode requests from a bare pool of `threads`
    threads (no queue, database or limiter): what this machine and simulator allow. `how`:
    "together" sends each with the workers' own call and clients (`workers.api.complete`, a
    client per thread, made before the clock starts, as the workers' are warm); "httpx" posts
    the JSON with one plain httpx client."""
    requests = []
    for story in load_dataset_spec(str(dataset)).stories:
        questions = [(q.turn, q.text, q.references) for q in story.questions]
        for model in MODELS.values():
            for turn, _, _ in questions:
                messages = build_messages(story.text, questions, turn, HistoryMode.GOLD)
                requests.append((model, messages))
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    shared = httpx.Client(base_url=base_url, limits=limits)
    settings = Settings(_env_file=None)  # a local base URL needs no key
    clients = [make_client(settings, base_url, CONNECTIONS_PER_THREAD) for _ in range(threads)]
    handed_out = itertools.count()
    local = threading.local()

    def ask(request: tuple[str, list[dict[str, str]]]) -> None:
        model, messages = request
        if how == "httpx":
            body = {"model": model, "messages": messages, "temperature": 0.0, "max_tokens": 128}
            shared.post("/v1/chat/completions", json=body).raise_for_status()
            return
        if not hasattr(local, "client"):
            local.client = clients[next(handed_out)]
        complete(local.client, model, messages, 0.0, 128, None)

    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        list(pool.map(ask, requests))
        elapsed = time.perf_counter() - started
    shared.close()
    return elapsed


def bench_seed(setup: Setup, pool_size: int) -> dict[str, Any]:
    stories = load_dataset_spec(str(setup.dataset(setup.stories, setup.turns))).stories
    sim = Sim(setup.log_dir, setup.latency_ms)
    try:
        result = run_seed_protocol(sim.base_url, stories, MODELS, pool_size)
        stats = sim.stats()
    finally:
        sim.stop()
    say(f"seed protocol: {result.requests} requests in {result.wall_s:.2f}s")
    ideal = result.requests * sim.latency_s / pool_size
    return {**asdict(result), "ideal_s": round(ideal, 3), "simulator": stats["by_status"]}


def rate_in(times: Sequence[float], start: float, end: float, trim: float) -> float:
    """Answers per minute within start..end, `trim` of that span left out at each end."""
    low, high = start + trim * (end - start), end - trim * (end - start)
    return sum(low <= t <= high for t in times) / max(1e-9, high - low) * 60


def model_rates(times: dict[str, list[float]], created: float, trim: float) -> dict[str, Any]:
    """Per model: the rate over the run's middle (run created .. last answer of any model), and
    the rate while that model was being served (its own first .. last answer)."""
    end = max(t for model_times in times.values() for t in model_times)
    return {
        label: {
            "run_rpm": round(rate_in(model_times, created, end, trim), 1),
            "active_rpm": round(rate_in(model_times, min(model_times), max(model_times), trim), 1),
            "first_answer_s": round(min(model_times) - created, 2),
            "last_answer_s": round(max(model_times) - created, 2),
        }
        for label, model_times in sorted(times.items())
    }


def bench_rate_limit(
    setup: Setup, stories: int, turns: int, workers: int, concurrency: int, limit: int
) -> dict[str, Any]:
    dataset = setup.dataset(stories, turns)
    with contextlib.ExitStack() as stack:
        warm_sim = Sim(setup.log_dir, 20)
        stack.callback(warm_sim.stop)
        sim = Sim(setup.log_dir, setup.latency_ms, rpm=limit)  # a new port: new limiter keys
        stack.callback(sim.stop)
        fleet = stack.enter_context(fleet_on(setup, "rate", workers, concurrency))
        warm_up(setup, fleet, warm_sim)
        timing = fleet.submit(dataset, sim, "--no-cache")
        stats = sim.stats()
        times = fleet.answer_times(timing.run_id)
        created = fleet.run_created(timing.run_id)
    rates = model_rates(times, created, 0.1)
    fractions = {label: round(r["run_rpm"] / limit, 3) for label, r in rates.items()}
    active = {label: round(r["active_rpm"] / limit, 3) for label, r in rates.items()}
    share_429 = stats["by_status"].get("429", 0) / max(1, stats["requests_total"])
    say(
        f"rate limit: sustained {fractions} of {limit}/min (while served: {active}), "
        f"429 share {share_429:.3f}"
    )
    return {
        "sustained_fraction": min(fractions.values()),
        "sustained_fraction_by_model": fractions,
        "share_429": round(share_429, 4),
        "fraction_while_model_served": active,
        "limit_rpm": limit,
        "by_model": rates,
        "run_vs_floor": round(stories * turns / (limit / 60) / timing.last_answer_s, 3),
        "floor_s": round(stories * turns / (limit / 60), 2),
        "simulator": {k: stats[k] for k in ("requests_total", "by_status", "rate_limited")},
        "timing": asdict(timing),
    }


def bench_cache(setup: Setup) -> dict[str, Any]:
    dataset = setup.dataset(setup.stories, setup.turns)
    with warm_fleet(setup, "cache", setup.latency_ms) as (sim, fleet):
        fill = fleet.submit(dataset, sim, *setup.unlimited_options())
        filled = sim.stats()["requests_total"]
        sim.reset()
        rerun = fleet.submit(dataset, sim, *setup.unlimited_options())
        rerun_calls = sim.stats()["requests_total"]
        (cached,) = fleet.one(
            "SELECT count(*) FILTER (WHERE cached) FROM answers WHERE run_id = %s", rerun.run_id
        )
    say(
        f"cache: fill {filled} calls in {fill.created_to_done_s}s, rerun {rerun_calls} calls "
        f"in {rerun.created_to_done_s}s"
    )
    return {
        "rerun_api_calls": rerun_calls,
        "fill_api_calls": filled,
        "rerun_cached_answers": int(cached),
        "fill": asdict(fill),
        "rerun": asdict(rerun),
    }


def bench_pipeline(setup: Setup, stories: int) -> dict[str, Any]:
    dataset = setup.dataset(stories, setup.turns)
    with warm_fleet(setup, "pipe", 0) as (sim, fleet):
        timing = fleet.submit(dataset, sim, "--no-cache", *setup.unlimited_options())
        pids = fleet.worker_pids()
        rss = peak_rss_mb(pids)
        rss_each = [peak_rss_mb(descendants(w.pid)) for w in fleet.workers]
    rate = timing.answers / timing.last_answer_s
    say(f"pipeline: {timing.answers} answers, {rate:.0f}/s, worker peak RSS {rss} MB")
    return {
        "pipeline_answers_per_s": round(rate, 1),
        "answers_per_s_created_to_done": round(timing.answers / timing.created_to_done_s, 1),
        "worker_rss_mb": rss,
        "worker_rss_mb_each": rss_each,
        "timing": asdict(timing),
    }


# --- main -----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma list of {PARTS}")
    parser.add_argument("--stories", type=int, default=50)
    parser.add_argument("--turns", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32, help="threads per worker")
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument(
        "--rounds", type=int, default=3, help="efficiency: rounds of evalfleet and bare pools"
    )
    parser.add_argument(
        "--unlimit",
        choices=("flag", "env"),
        default="flag",
        help="unlimited simulator: --rpm on runs, or EVALFLEET_INITIAL_RPM",
    )
    parser.add_argument("--seed-pool", type=int, default=8)
    parser.add_argument("--rate-stories", type=int, default=60)
    parser.add_argument("--rate-turns", type=int, default=10)
    parser.add_argument("--rate-workers", type=int, default=3)
    parser.add_argument("--rate-concurrency", type=int, default=32)
    parser.add_argument("--rate-limit", type=int, default=600, help="simulator rpm per model")
    parser.add_argument("--pipeline-stories", type=int, default=100)
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument(
        "--retries", type=int, default=1, help="re-runs of a part PostgreSQL restarted under"
    )
    return parser.parse_args()


def postgres_losses(result: Any) -> int:
    """PostgreSQL restarts seen during the measured runs of one part's result."""
    if isinstance(result, dict):
        return int(result.get("postgres_lost", 0)) + sum(
            postgres_losses(v) for v in result.values()
        )
    if isinstance(result, list):
        return sum(postgres_losses(v) for v in result)
    return 0


def run_part(name: str, measure: Callable[[], dict[str, Any]], retries: int) -> dict[str, Any]:
    """One part, run again (up to `retries` times) when PostgreSQL restarted under it."""
    for attempt in range(retries + 1):
        result = measure()
        lost = postgres_losses(result)
        if not lost:
            return {**result, "disturbed_attempts": attempt}
        say(f"{name}: PostgreSQL restarted {lost}x during the run: disturbed, measuring again")
    return {**result, "disturbed_attempts": retries + 1, "disturbed": True}


def main() -> None:
    args = parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts {sorted(unknown)}: choose among {PARTS}")
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="evalfleet-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    say(f"logs in {log_dir}")
    setup = Setup(
        log_dir,
        log_dir,
        args.stories,
        args.turns,
        args.workers,
        args.concurrency,
        args.latency_ms,
        args.unlimit,
    )
    measures: dict[str, Callable[[], dict[str, Any]]] = {
        "efficiency": lambda: bench_efficiency(setup, args.rounds),
        "seed": lambda: bench_seed(setup, args.seed_pool),
        "rate_limit": lambda: bench_rate_limit(
            setup,
            args.rate_stories,
            args.rate_turns,
            args.rate_workers,
            args.rate_concurrency,
            args.rate_limit,
        ),
        "cache": lambda: bench_cache(setup),
        "pipeline": lambda: bench_pipeline(setup, args.pipeline_stories),
    }
    started = time.perf_counter()
    out: dict[str, Any] = {
        "benchmark": "throughput",
        "unlimited_by": (
            f"--rpm {UNLIMITED_RPM} on each run (fixed limiter)"
            if args.unlimit == "flag"
            else f"EVALFLEET_INITIAL_RPM={UNLIMITED_RPM} in the workers (adaptive limiter)"
        ),
        "load_average_before": os.getloadavg()[0],
    }
    raw = {part: run_part(part, measures[part], args.retries) for part in PARTS if part in parts}
    out.update(headline(raw))
    out["disturbed_parts"] = [part for part, result in raw.items() if result.get("disturbed")]
    out["load_average_after"] = os.getloadavg()[0]
    out["elapsed_s"] = round(time.perf_counter() - started, 1)
    out["raw"] = raw
    print(json.dumps(out))


def headline(raw: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue asks for, from each part's raw result."""
    out: dict[str, Any] = {}
    if "efficiency" in raw:
        out["efficiency"] = raw["efficiency"]["efficiency"]
        for reference in (
            "bare_together_pool_efficiency",
            "bare_httpx_pool_efficiency",
            "vs_bare_together_pool",
        ):
            out[reference] = raw["efficiency"][reference]
    if "seed" in raw and "efficiency" in raw:
        evalfleet_s = raw["efficiency"]["timing"]["created_to_done_s"]
        out["speedup_vs_seed"] = round(raw["seed"]["wall_s"] / evalfleet_s, 2)
    if "rate_limit" in raw:
        out["rate_limit"] = {k: raw["rate_limit"][k] for k in ("sustained_fraction", "share_429")}
    if "cache" in raw:
        out["rerun_api_calls"] = raw["cache"]["rerun_api_calls"]
    if "pipeline" in raw:
        out["pipeline_answers_per_s"] = raw["pipeline"]["pipeline_answers_per_s"]
        out["worker_rss_mb"] = raw["pipeline"]["worker_rss_mb"]
    return out


if __name__ == "__main__":
    main()
