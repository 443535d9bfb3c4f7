"""SQL transactions and statements per item: what one delivery of a short item costs.

    .venv/bin/python bench/per_item.py [--stories 200] [--turns 5] [--threads 16]

The workers' own task (`evalfleet.answer_item`, run in this process by Celery's `apply`,
from --threads threads like a worker's thread pool, all sharing the process' group commit)
answers every item of a run of --stories stories of --turns questions and two models, on a
fresh PostgreSQL database, against `evalfleet sim` without latency, the limiter in the
machine's Redis. SQLAlchemy's engine events count, while the items are answered:
transactions begun, commits and statements (an executemany counts once). Run it with
another checkout's interpreter (its own .venv, installed from that checkout) to measure that
code: only the task, `create_run` and the settings are used. Prints one JSON object as the
last line (bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from part_setup import PG_ADMIN, UNLIMITED_RPM
from progress import say
from redis import Redis
from sim_process import Sim
from sqlalchemy import Engine, event, select
from timed_fleet import REDIS_URL
from workload import MODELS, build_dataset

from evalfleet.fleet import evalfleet_command
from evalfleet.scratch_database import fresh_database


class SqlCounter:
    """Transactions, commits and statements of every engine of this process, while on."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.on = False
        self._lock = threading.Lock()
        for name in ("begin", "commit", "rollback"):
            event.listen(Engine, name, self._counter(name))
        event.listen(Engine, "before_cursor_execute", self._counter("statement"))

    def _counter(self, name: str) -> Any:
        def count(*_args: Any, **_kwargs: Any) -> None:
            if self.on:
                with self._lock:
                    self.counts[name] += 1

        return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, default=200)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="evalfleet-per-item-"))
    dataset = build_dataset(log_dir / "data.jsonl", args.stories, args.turns)
    queue = f"evalfleet-per-item-{uuid.uuid4().hex[:8]}"
    sim = Sim(log_dir, 0)
    try:
        with fresh_database(PG_ADMIN, "evalfleet_bench_peritem_") as database:
            env = {
                "EVALFLEET_DATABASE_URL": database.url,
                "EVALFLEET_BROKER_URL": REDIS_URL,
                "EVALFLEET_QUEUE": queue,
                "EVALFLEET_WORKER_CONCURRENCY": str(args.threads),
            }
            os.environ.update(env)
            subprocess.run(
                evalfleet_command("db", "upgrade"),
                env={**os.environ},
                check=True,
                capture_output=True,
            )
            out = measure(args, dataset, sim)
    finally:
        sim.stop()
        Redis.from_url(REDIS_URL).delete(queue)  # the aggregation message nobody consumes
    print(json.dumps(out))


def measure(args: argparse.Namespace, dataset: Path, sim: Sim) -> dict[str, Any]:
    # Imported once the settings are in the environment: the task reads them on first use.
    from evalfleet.producer.create_run import create_run
    from evalfleet.producer.loaders.registry import load_dataset_spec
    from evalfleet.schema.db import make_engine, make_sessionmaker
    from evalfleet.schema.models import Item, Run
    from evalfleet.schema.payloads import RunConfig
    from evalfleet.workers.tasks import answer_item

    sessions = make_sessionmaker(make_engine(os.environ["EVALFLEET_DATABASE_URL"]))
    config = RunConfig(models=dict(MODELS), base_url=sim.base_url, cache=False, rpm=UNLIMITED_RPM)
    run_id = create_run(sessions, load_dataset_spec(str(dataset)), config)
    with sessions() as session:
        item_ids = list(session.scalars(select(Item.id).where(Item.run_id == run_id)))
    # A warm-up item first (imports, pools, HTTP clients), not counted
    answer_item.apply(args=[item_ids[0]])
    counter = SqlCounter()
    counter.on = True
    started, cpu_started = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(args.threads) as pool:
        results = list(pool.map(lambda item: answer_item.apply(args=[item]), item_ids[1:]))
    wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    counter.on = False
    failed = [r.traceback for r in results if r.failed()]
    with sessions() as session:
        states = Counter(session.scalars(select(Item.state).where(Item.run_id == run_id)))
        run_state = session.scalar(select(Run.state).where(Run.id == run_id))
    items = len(item_ids) - 1
    per_item = {name: round(count / items, 2) for name, count in sorted(counter.counts.items())}
    say(f"{items} items of {args.turns} questions in {wall_s:.1f}s: per item {per_item}")
    return {
        "benchmark": "per_item",
        "questions_per_item": args.turns,
        "items": items,
        "threads": args.threads,
        "transactions_per_item": per_item.get("begin", 0.0),
        "commits_per_item": per_item.get("commit", 0.0),
        "statements_per_item": per_item.get("statement", 0.0),
        "items_per_s": round(items / wall_s, 1),
        # this process: the task's own CPU, without Celery's transport
        "cpu_ms_per_item": round(cpu_s / items * 1000, 2),
        "item_states": dict(states),
        "run_state": run_state,  # aggregating: its aggregation was claimed, once
        "failed_tasks": len(failed),
        "first_failure": failed[0] if failed else None,
    }


if __name__ == "__main__":
    main()
