"""Throughput of evalfleet on this machine, against the local simulator.

    .venv/bin/python bench/throughput.py [--only efficiency,seed,rate_limit,cache,pipeline,
                                                short_items]

Real worker processes (`evalfleet worker`), the machine's Redis (a unique EVALFLEET_QUEUE
per part) and PostgreSQL (a fresh database per part), the simulator as an `evalfleet sim`
subprocess (its CPU does not share this process' GIL). Workers are started and warmed up by
a small run first; then a run is submitted with `evalfleet run --no-wait` and its database
polled until its state is `done` (bench/README.md). The parts, in
parts.py:

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
- short_items: zero latency, SQuAD-shaped items (a paragraph, ~5 questions) against 15-turn
  ones on one warm fleet: `short_items_vs_long`, the ratio of their answers per second
  (bench/short_items.py).
- rate_limit_noisy, reports, batch: the benchmarks bench/noisy_limit.py (adaptive limiter,
  600 rpm limit plus 10% random 429s), bench/report_speed.py (status and each report format
  at 21k answers, before/after) and bench/batch.py (--mode batch against a synchronous run),
  run as scripts with their defaults; their figures are in the headline, their objects in
  `raw`.

The efficiency part also gives `cpu_per_answer_vs_bare`: the workers' CPU seconds over the
bare together pool's (this process' CPU during the pool) for the same requests.

Each measured run also reports the transactions committed in its database and the CPU
seconds of each process group (workers, simulator,
this database's PostgreSQL backends, the rest of PostgreSQL, Redis, the producer, this
process, and the rest of the machine) to say what limited the figure. A part during which
PostgreSQL restarted (another benchmark's chaos) is measured again (--retries). Prints
progress lines starting with '#', then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from part_setup import UNLIMITED_RPM, Setup
from parts import bench_cache, bench_efficiency, bench_pipeline, bench_rate_limit, bench_seed
from progress import say
from short_items import bench_short_items

PARTS = (
    "efficiency",
    "seed",
    "rate_limit",
    "cache",
    "pipeline",
    "short_items",
    "rate_limit_noisy",
    "reports",
    "batch",
)
# Parts that are benchmarks of their own, run as scripts beside this one: their last line.
SCRIPTS = {
    "rate_limit_noisy": "noisy_limit.py",
    "reports": "report_speed.py",
    "batch": "batch.py",
}


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
    parser.add_argument("--short-paragraphs", type=int, default=300, help="SQuAD paragraphs")
    parser.add_argument("--short-rounds", type=int, default=2)
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument(
        "--retries", type=int, default=1, help="re-runs of a part PostgreSQL restarted under"
    )
    return parser.parse_args()


def setup_from(args: argparse.Namespace, log_dir: Path) -> Setup:
    """The parts' shared options (bench/thread_cpu.py measures the efficiency part's)."""
    return Setup(
        log_dir,
        log_dir,
        args.stories,
        args.turns,
        args.workers,
        args.concurrency,
        args.latency_ms,
        args.unlimit,
    )


def script_result(script: str) -> dict[str, Any]:
    """Run a bench script of this folder with its defaults; its last line's JSON object."""
    here = Path(__file__).resolve().parent
    done = subprocess.run(
        [sys.executable, str(here / script)], cwd=here, capture_output=True, text=True
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-5:]
        return {"error": f"{script} exited {done.returncode}", "stderr_tail": tail}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


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
    setup = setup_from(args, log_dir)
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
        "short_items": lambda: bench_short_items(
            setup, args.short_paragraphs, args.pipeline_stories, args.short_rounds
        ),
        **{part: (lambda script=script: script_result(script)) for part, script in SCRIPTS.items()},
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
            "cpu_per_answer_vs_bare",
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
    if "short_items" in raw:
        out["short_items_vs_long"] = raw["short_items"]["short_items_vs_long"]
    if "sustained_fraction" in raw.get("rate_limit_noisy", {}).get("rate_limit_noisy", {}):
        noisy = raw["rate_limit_noisy"]["rate_limit_noisy"]
        out["rate_limit_noisy"] = {k: noisy[k] for k in ("sustained_fraction", "share_429")}
    if "status_s" in raw.get("reports", {}):
        out["report_s_per_10k_answers"] = raw["reports"]["report_s_per_10k_answers"]["after"]
        out["status_s"] = raw["reports"]["status_s"]
    if "answers" in raw.get("batch", {}):
        keys = ("answers", "expected_answers", "sync_chat_calls", "cost_vs_sync")
        out["batch"] = {k: raw["batch"][k] for k in keys}
    return out


if __name__ == "__main__":
    main()
