"""The chaos bench, small: a run through a SIGKILLed worker, an emptied Redis, a PostgreSQL
restart and an API answering 429, 503 and timing out still answers every question once,
aggregates once, and scores exactly as a run on a fault-free simulator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"
SAMPLE = "coqa/coqa-validation-first20.jsonl"
STORIES = 4  # 58 questions, 116 answers
# A fixed cluster-wide rate: the simulator's 429s are random, not a quota, and the adaptive
# limiter would keep cutting its rate on them (to ~20/min per model), well past the time budget.
RPM = "600"


def machine_cluster(admin_url: str) -> bool:
    """The tests' PostgreSQL is this machine's cluster, which pg_ctlcluster can restart."""
    has_tool = shutil.which("pg_ctlcluster") is not None and Path("/etc/postgresql").is_dir()
    return has_tool and "@127.0.0.1:5432/" in admin_url


def run_bench(dataset: Path, admin_url: str, redis_url: str, restarts: int, logs: Path) -> Any:
    command = [
        sys.executable, str(BENCH), "--dataset", str(dataset), "--stories", str(STORIES),
        "--seed", "3", "--kills", "1", "--flushes", "1", "--pg-restarts", str(restarts),
        "--lease-s", "6", "--rpm", RPM, "--postgres", admin_url,
        "--redis", redis_url.rsplit("/", 1)[0], "--timeout", "75", "--log-dir", str(logs),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=170, check=False)


def test_a_run_through_kills_a_redis_flush_and_a_postgres_restart_loses_and_doubles_nothing(
    shared_file: Callable[[str], Path], postgres_admin: str, redis_url: str, tmp_path: Path
) -> None:
    # Given the first stories of the CoQA sample, three workers and an API that answers 429
    # (10%), 503 (5%) and times out (2%)
    dataset = shared_file(SAMPLE)
    restarts = 1 if machine_cluster(postgres_admin) else 0
    if not restarts:
        warnings.warn(
            "PostgreSQL restart fault SKIPPED: no pg_ctlcluster-managed cluster behind "
            f"{postgres_admin.split('@')[-1]} (embedded PostgreSQL?); the other faults run",
            stacklevel=1,
        )
    # When a worker is killed with SIGKILL, Redis is flushed and PostgreSQL restarts mid-run
    done = run_bench(dataset, postgres_admin, redis_url, restarts, tmp_path / "logs")
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    context = json.dumps(result, indent=1) + "\n" + done.stderr[-3000:]
    # Then every fault happened, and still every question is answered exactly once
    assert result["faults"]["kill"] == 1 and result["faults"]["redis_flush"] == 1, context
    assert result["faults"]["postgres_restart"] == restarts, context
    assert result["workers_alive_at_end"] == 3, context  # each killed worker was replaced
    assert result["answers"] == result["expected_answers"] == 2 * 58, context
    assert result["duplicates"] == 0 and result["missing"] == 0, context
    assert result["failed_items"] == 0, context
    # And the run was aggregated once, with the scores of a fault-free run
    assert result["state"] == "done" and result["aggregations"] == 1, context
    assert result["scores_match_fault_free"], context
    assert result["api_calls"] >= result["min_api_calls"], context
