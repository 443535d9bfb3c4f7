"""Chaos bench: a run through SIGKILLed workers, an emptied Redis, a PostgreSQL restart and an
API that answers 429, 503 and times out, compared with a fault-free run of the same data.

    .venv/bin/python bench/chaos.py [--stories 20] [--seed 1] [--kills 2] [--flushes 1]
                                    [--pg-restarts 1] [--workers 3] [--concurrency 8]

Uses the machine's Redis (an empty database number of it, flushed during the run) and
PostgreSQL (a database made for the run and dropped at the end; the whole cluster is
restarted with pg_ctlcluster). The faults fire as the answers reach 1/(n+2), 2/(n+2), ...
of the expected count. Prints progress lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from evalfleet.fleet import Worker, WorkerFleet, child_env, evalfleet_command
from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.scratch_database import fresh_database, wait_for_postgres
from evalfleet.simulator.config import DEMO_MODELS, SimConfig
from evalfleet.simulator.server import SimServer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "coqa" / "coqa-validation-first20.jsonl"
MODELS = DEMO_MODELS
SIM_TIMEOUT_S = 3.0  # the simulator's "timeout" fault holds a request this long
RECOVERY = {
    "EVALFLEET_API_TIMEOUT_S": "1.5",  # under SIM_TIMEOUT_S: timeouts are the client's
    "EVALFLEET_SWEEP_INTERVAL_S": "3",
    "EVALFLEET_REQUEST_ATTEMPTS": "6",
    "EVALFLEET_TASK_MAX_RETRIES": "30",
    "EVALFLEET_MAX_ATTEMPTS": "30",
    "EVALFLEET_VISIBILITY_TIMEOUT_S": "120",
    "EVALFLEET_TASK_TIME_LIMIT_S": "90",
}


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- services: an empty Redis database number -------------------------------------------------


def empty_redis_db(server_url: str) -> str:
    """The URL of an empty database number (never db 0: others use it), picked at random."""
    client = redis.Redis.from_url(server_url)
    count = int(client.config_get("databases")["databases"] or 16)
    used = {int(name[2:]) for name in client.info("keyspace")}
    free = [db for db in range(1, count) if db not in used]
    if not free:
        raise SystemExit(f"no empty database number on {server_url}")
    return f"{server_url.rstrip('/')}/{random.choice(free)}"


def limiter_state(broker_url: str) -> dict[str, dict[str, float]]:
    """The cluster-wide limiter per model at the end (counts since the Redis flush)."""
    client = redis.Redis.from_url(broker_url, decode_responses=True)
    fields = ("rate", "cuts", "limited", "successes")
    return {
        key.split(":", 3)[3]: {
            f: round(float(v), 1) for f, v in client.hgetall(key).items() if f in fields
        }  # fmt: skip
        for key in client.scan_iter("evalfleet:rl:*")
    }


# --- workers and the CLI ---------------------------------------------------------------------


def busiest(workers: WorkerFleet, celery: Celery) -> tuple[Worker, int]:
    """The live worker running the most tasks (Celery's inspect; ties: the oldest)."""
    active = celery.control.inspect(timeout=1.0).active() or {}
    running = {host.split("@")[0]: len(tasks) for host, tasks in active.items()}
    worker = max(workers.alive(), key=lambda worker: running.get(worker.name, 0))
    return worker, running.get(worker.name, 0)


def kill_one(workers: WorkerFleet, celery: Celery) -> None:
    """SIGKILL the busiest live worker and start a replacement, so the count stays."""
    victim, tasks = busiest(workers, celery)
    log(f"SIGKILL {victim.name} ({tasks} tasks running)")
    workers.kill(victim)
    workers.start_more(1)


def evalfleet(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        evalfleet_command(*args),
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"evalfleet {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def start_run(dataset: Path, stories: int, env: dict[str, str], rpm: float | None) -> int:
    args = ["run", "--dataset", str(dataset), "--limit", str(stories), "--no-cache",
            "--base", MODELS["base"], "--finetuned", MODELS["finetuned"]]  # fmt: skip
    if rpm is not None:
        args += ["--rpm", str(rpm)]
    return int(evalfleet(args, env).split()[1].rstrip(":"))


def scores(run_id: int, env: dict[str, str]) -> dict[str, dict[str, float | None]]:
    report = json.loads(evalfleet(["report", str(run_id), "--format", "json"], env))
    return {
        label: {"em": model["em"], "f1": model["f1"]} for label, model in report["models"].items()
    }


# --- watching the run in SQL (through a PostgreSQL restart) -----------------------------------


def query(engine: Engine, sql: str, run_id: int) -> Any:
    """One scalar, or None while the database is away."""
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), {"run": run_id}).scalar()
    except DBAPIError:
        return None


def answers(engine: Engine, run_id: int) -> int:
    return int(query(engine, "SELECT count(*) FROM answers WHERE run_id = :run", run_id) or 0)


def reached(engine: Engine, run_id: int, count: int) -> bool:
    return answers(engine, run_id) >= count


def wait_until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g}s")
        time.sleep(0.2)


def measure(engine: Engine, run_id: int, expected: int) -> dict[str, Any]:
    """The user-visible outcome: answer rows, duplicate keys, questions without an answer."""
    duplicates = """SELECT count(*) FROM (SELECT 1 FROM answers WHERE run_id = :run
                    GROUP BY model_label, story_id, turn HAVING count(*) > 1) AS d"""
    answered = """SELECT count(DISTINCT (model_label, story_id, turn)) FROM answers
                   WHERE run_id = :run AND error IS NULL AND text IS NOT NULL"""
    failed_items = "SELECT count(*) FROM items WHERE run_id = :run AND state = 'failed'"
    return {
        "state": query(engine, "SELECT state FROM runs WHERE id = :run", run_id),
        "answers": answers(engine, run_id),
        "duplicates": int(query(engine, duplicates, run_id)),
        "missing": expected - int(query(engine, answered, run_id)),
        "aggregations": int(query(engine, "SELECT aggregations FROM runs WHERE id = :run", run_id)),
        "failed_items": int(query(engine, failed_items, run_id)),
    }


# --- the faults --------------------------------------------------------------------------------


def restart_postgres(admin_url: str) -> None:
    """Restart the machine's cluster (fast mode: every connection is cut) and wait for it."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    wait_for_postgres(admin_url)


def fault_plan(kills: int, flushes: int, restarts: int) -> list[str]:
    """The faults in the order they fire, kinds interleaved: kill, flush, restart, kill, ..."""
    kinds = [["kill"] * kills, ["redis_flush"] * flushes, ["postgres_restart"] * restarts]
    return [k for group in itertools.zip_longest(*kinds) for k in group if k is not None]


def run_with_faults(
    engine: Engine, run_id: int, expected: int, plan: list[str],
    actions: dict[str, Callable[[], object]], timeout: float,
) -> dict[str, int]:  # fmt: skip
    """Fire each fault when the answers reach its share of `expected`; wait for the end."""
    deadline = time.monotonic() + timeout
    fired = dict.fromkeys(actions, 0)
    for index, kind in enumerate(plan):
        at = expected * (index + 1) // (len(plan) + 2)
        wait_until(partial(reached, engine, run_id, at), deadline - time.monotonic(), kind)
        log(f"{kind} at {answers(engine, run_id)}/{expected} answers")
        actions[kind]()
        fired[kind] += 1
    finished = ("done", "failed")
    wait_until(lambda: query(engine, "SELECT state FROM runs WHERE id = :run", run_id) in finished,
               deadline - time.monotonic(), f"run {run_id}")  # fmt: skip
    return fired


# --- the bench --------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SAMPLE)
    parser.add_argument("--stories", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1, help="the simulator's fault seed")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--flushes", type=int, default=1)
    parser.add_argument("--pg-restarts", type=int, default=1)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a libpq URL allowed to create databases")  # fmt: skip
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="server, no db")
    parser.add_argument("--rpm", type=float, default=None, help="passed to `evalfleet run`")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--lease-s", type=float, default=15.0, help="EVALFLEET_LEASE_S")
    parser.add_argument("--timeout", type=float, default=900.0, help="per run, seconds")
    parser.add_argument("--log-dir", type=Path, default=None)
    return parser.parse_args()


@dataclass(frozen=True)
class Timed:
    run_id: int
    wall_s: float
    fired: dict[str, int]
    sim: dict[str, Any]  # the simulator's counters
    limiter: dict[str, dict[str, float]]


def timed_run(
    config: SimConfig, env: dict[str, str], args: argparse.Namespace, engine: Engine,
    expected: int, plan: list[str], actions: dict[str, Callable[[], object]],
) -> Timed:  # fmt: skip
    """One run on its own simulator, from `evalfleet run` to the run's end, faults on the way."""
    with SimServer(config) as sim:
        started = time.monotonic()
        run_env = {**env, "TOGETHER_BASE_URL": sim.base_url}
        run_id = start_run(args.dataset, args.stories, run_env, args.rpm)
        fired = run_with_faults(engine, run_id, expected, plan, actions, args.timeout)
        wall_s = round(time.monotonic() - started, 1)
        return Timed(run_id, wall_s, fired, sim.stats(), limiter_state(env["EVALFLEET_BROKER_URL"]))


def main() -> None:
    args = parse_args()
    stories = load_dataset_spec(str(args.dataset), limit=args.stories).stories
    expected = len(MODELS) * sum(len(story.questions) for story in stories)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="evalfleet-chaos-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    broker_url = empty_redis_db(args.redis)
    faulty = SimConfig(seed=args.seed, latency_ms_mean=args.latency_ms, fault_429=0.10,
                       fault_503=0.05, fault_timeout=0.02, timeout_s=SIM_TIMEOUT_S)  # fmt: skip
    clean = SimConfig(seed=args.seed, latency_ms_mean=args.latency_ms)
    log(f"{expected} answers expected; broker {broker_url}; logs in {log_dir}")
    with fresh_database(args.postgres, "evalfleet_chaos_") as database:
        # The workers get these settings from this script only, none from its environment.
        env = child_env({
            **RECOVERY,
            "EVALFLEET_LEASE_S": str(args.lease_s),
            "EVALFLEET_DATABASE_URL": database.url,
            "EVALFLEET_BROKER_URL": broker_url,
            "EVALFLEET_QUEUE": f"evalfleet-chaos-{uuid.uuid4().hex[:8]}",
        }, clean=True)  # fmt: skip
        engine = create_engine(database.url, pool_pre_ping=True)
        workers = WorkerFleet(
            args.workers, args.concurrency, env, log_dir, name="chaos", pool="threads"
        )
        celery = Celery(broker=broker_url, set_as_current=False)
        actions: dict[str, Callable[[], object]] = {
            "kill": partial(kill_one, workers, celery),
            "redis_flush": lambda: redis.Redis.from_url(broker_url).flushdb(),
            "postgres_restart": lambda: restart_postgres(args.postgres),
        }
        plan = fault_plan(args.kills, args.flushes, args.pg_restarts)
        try:
            evalfleet(["db", "upgrade"], env)
            workers.start()
            chaos = timed_run(faulty, env, args, engine, expected, plan, actions)
            outcome = measure(engine, chaos.run_id, expected)
            log(f"chaos run {chaos.run_id} {outcome['state']} in {chaos.wall_s}s; now fault-free")
            fault_free = timed_run(clean, env, args, engine, expected, [], {})
            chaos_scores, clean_scores = scores(chaos.run_id, env), scores(fault_free.run_id, env)
            alive_at_end = len(workers.alive())
        finally:
            workers.stop()
            engine.dispose()
            redis.Redis.from_url(broker_url).flushdb()  # leave the database number empty
    ok = chaos.sim["by_status"].get("200", 0) - chaos.sim["faults"].get("timeout", 0)
    print(json.dumps({
        "expected_answers": expected,
        **outcome,
        "scores_match_fault_free": chaos_scores == clean_scores,
        "scores": chaos_scores,
        "fault_free_scores": clean_scores,
        "faults": {**chaos.sim["faults"], **chaos.fired},
        "api_calls": chaos.sim["requests_total"],
        "min_api_calls": expected,
        "http_status": chaos.sim["by_status"],
        # Answers the API gave (200s, less the timeouts the client had given up on) beyond
        # the answers stored: paid for twice.
        "answers_paid_twice": ok - outcome["answers"],
        "rate_limiter_end": chaos.limiter,
        "workers_alive_at_end": alive_at_end,
        "wall_s": chaos.wall_s,
        "fault_free_wall_s": fault_free.wall_s,
        "stories": args.stories,
        "seed": args.seed,
        "rpm": args.rpm,
        "logs": str(log_dir),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
