"""Batch mode against the synchronous path on the same work (docs/architecture.md, D10 and
bench/README.md).

    .venv/bin/python bench/batch.py [--stories 40] [--turns 10] [--workers 2]
                                    [--batch-delay-s 2] [--max-requests 200]

An in-process simulator (no latency; batches complete --batch-delay-s after creation), a
fresh PostgreSQL database, the machine's Redis (a queue of its own) and --workers real
`evalfleet worker` processes. One batch run of both models over the CoQA-shaped set
(bench/workload.py), without the cache, split into files of --max-requests lines; then the
same run synchronously. Reported: answers stored by the batch run against the questions
asked (`answers`, `expected_answers`), the chat-completion requests the simulator counted
during the batch run (`sync_chat_calls`, target 0), the batch run's cost over the
synchronous run's (`cost_vs_sync`, 0.5 at the default batch price), whether both runs
scored the same (`same_scores`), batches created and wall times. Progress lines start with
'#'; one JSON object is the last line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from workload import build_dataset

from evalfleet.fleet import WorkerFleet, child_env, evalfleet_command
from evalfleet.scratch_database import fresh_database
from evalfleet.simulator.batches import BatchSimConfig
from evalfleet.simulator.config import DEMO_MODELS, SimConfig
from evalfleet.simulator.server import SimServer

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


def say(message: str) -> None:
    print(f"# {message}", flush=True)


def run(env: dict[str, str], dataset: Path, *extra: str) -> tuple[dict[str, Any], float]:
    args = [
        "run", "--dataset", str(dataset), "--base", DEMO_MODELS["base"],
        "--finetuned", DEMO_MODELS["finetuned"], "--no-cache", "--wait", "--json", *extra,
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        evalfleet_command(*args), env=env, capture_output=True, text=True, timeout=1800,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"run {' '.join(extra)} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout), time.monotonic() - started


def batch_stats(sim: SimServer) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sim.base_url}/sim/batch-stats", timeout=5) as response:
        return dict(json.load(response))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=40)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-delay-s", type=float, default=2.0)
    parser.add_argument("--max-requests", type=int, default=200)
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="evalfleet-bench-batch-"))
    dataset = build_dataset(folder / "data.jsonl", options.stories, options.turns)
    batch_config = BatchSimConfig(completion_delay_s=options.batch_delay_s)
    with (
        SimServer(SimConfig(), batch_config) as sim,
        fresh_database(PG_ADMIN, "evalfleet_bench_batch_") as database,
    ):
        env = child_env({
            "EVALFLEET_DATABASE_URL": database.url, "EVALFLEET_BROKER_URL": REDIS_URL,
            "EVALFLEET_QUEUE": f"evalfleet-bench-batch-{uuid.uuid4().hex[:8]}",
            "TOGETHER_BASE_URL": sim.base_url, "EVALFLEET_BATCH_POLL_S": "0.5",
            "EVALFLEET_BATCH_MAX_REQUESTS": str(options.max_requests),
        }, clean=True)  # fmt: skip
        upgraded = subprocess.run(evalfleet_command("db", "upgrade"), env=env, check=False)
        if upgraded.returncode != 0:
            sys.exit("evalfleet db upgrade failed")
        with WorkerFleet(options.workers, 8, env, folder / "logs") as fleet:
            fleet.wait_ready()
            say(f"batch run: {options.stories} stories x {options.turns} turns, 2 models")
            batch, batch_s = run(env, dataset, "--mode", "batch")
            sync_chat_calls = sim.stats()["requests_total"]
            stats = batch_stats(sim)
            say(f"batch run done in {batch_s:.1f}s; synchronous run")
            sync, sync_s = run(env, dataset)
    models = batch["models"]
    answers = sum(m["answered"] for m in models.values())
    expected = sum(m["questions"] for m in models.values())
    same = all(
        (models[label]["em"], models[label]["f1"]) == (m["em"], m["f1"])
        for label, m in sync["models"].items()
    )
    batch_cost, sync_cost = batch["progress"]["cost_usd"], sync["progress"]["cost_usd"]
    result = {
        "answers": answers,
        "expected_answers": expected,
        "sync_chat_calls": sync_chat_calls,
        "cost_vs_sync": round(batch_cost / sync_cost, 4) if sync_cost else None,
        "same_scores": same,
        "batches_created": stats["batches_created"],
        "batch_lines_answered": stats["lines_answered"],
        "batch_wall_s": round(batch_s, 1),
        "sync_wall_s": round(sync_s, 1),
        "batch_delay_s": options.batch_delay_s,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
