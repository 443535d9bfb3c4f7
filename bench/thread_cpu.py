"""Where the workers' CPU goes, by thread: what limits `cpu_per_answer_vs_bare`.

The efficiency part's workload (bench/throughput.py: 2 workers x 32, 200 ms latency, 50
15-turn stories, two models) in back-to-back rounds, each an evalfleet run then the bare
`together` pool on the same requests. Each worker thread's CPU comes from
/proc/PID/task/TID/stat around the run; its name (the API pool, Celery's task threads, the
group commit's writer, the consumer's main thread) from `py-spy dump`, which this script
needs (`pip install py-spy`, or PY_SPY=/path/to/py-spy). Unlike py-spy's samples, these are
CPU seconds: a thread that holds the GIL while the OS has it off the core costs nothing here.
It takes bench/throughput.py's options (those of the efficiency part: --rounds, --stories,
--turns, --workers, --concurrency, --latency-ms, --unlimit).

    .venv/bin/python bench/thread_cpu.py --rounds 5
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from bare_pool import bare_pool_s
from measure import cpu_seconds, stat_cpu_s
from part_setup import warm_fleet
from progress import say
from throughput import parse_args, setup_from

# A pool's threads are numbered (`api-3`, `ThreadPoolExecutor-0_12`): one row per pool.
NUMBERED = re.compile(r"[-_]?\d+(_\d+)?$")


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each live thread of `pid`."""
    seconds = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        used = stat_cpu_s(Path(f"/proc/{pid}/task/{tid}/stat"))
        if used is not None:  # else the thread ended meanwhile
            seconds[int(tid)] = used
    return seconds


def thread_names(py_spy: str, pid: int) -> dict[int, str]:
    """Each thread's Python name, its number dropped (py-spy dump prints the OS thread id)."""
    dump = subprocess.run(
        [py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, check=True
    ).stdout
    return {
        int(tid): NUMBERED.sub("", name)
        for tid, name in re.findall(r'Thread (\d+) \(\w+\): "([^"]+)"', dump)
    }


def main() -> None:
    args = parse_args()
    py_spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy not found: pip install py-spy, or set PY_SPY to its path")
    log_dir = Path(tempfile.mkdtemp(prefix="evalfleet-thread-cpu-"))
    setup = setup_from(args, log_dir)
    dataset = setup.dataset(setup.stories, setup.turns)
    by_thread: collections.Counter[str] = collections.Counter()
    workers_s, bare_s = [], []
    with warm_fleet(setup, "threads", setup.latency_ms) as (sim, fleet):
        pids = fleet.worker_pids()
        for index in range(args.rounds):
            sim.reset()
            before = {pid: thread_cpu_s(pid) for pid in pids}
            process_before = {pid: cpu_seconds(pid) or 0.0 for pid in pids}
            timing = fleet.submit(dataset, sim, "--no-cache", *setup.unlimited_options())
            for pid in pids:
                names = thread_names(py_spy, pid)
                used = {
                    tid: seconds - before[pid].get(tid, 0.0)
                    for tid, seconds in thread_cpu_s(pid).items()
                }
                # The threads' figures sum to 5-10% less than the process' (the kernel
                # rounds each thread's ticks): each thread gets its share of the process'.
                scale = ((cpu_seconds(pid) or 0.0) - process_before[pid]) / max(
                    sum(used.values()), 1e-9
                )
                for tid, seconds in used.items():
                    by_thread[names.get(tid, "unnamed")] += seconds * scale
            _, bare = bare_pool_s(
                sim.base_url, dataset, setup.workers * setup.concurrency, "together"
            )
            workers_s.append(timing.cpu["workers_cpu_s"])
            bare_s.append(bare)
            say(f"round {index + 1}/{args.rounds}: workers {workers_s[-1]} s, bare {bare:.2f} s")
    bare_median = statistics.median(bare_s)
    print(
        json.dumps(
            {
                "benchmark": "thread_cpu",
                "rounds": args.rounds,
                "answers_per_round": timing.answers,
                "workers_cpu_s_per_round": round(statistics.median(workers_s), 3),
                "bare_pool_cpu_s_per_round": round(bare_median, 3),
                # Each thread kind's CPU per round over the bare pool's: the figures that sum
                # to the workers' `cpu_per_answer_vs_bare`.
                "vs_bare_by_thread": {
                    name: round(seconds / args.rounds / bare_median, 3)
                    for name, seconds in by_thread.most_common()
                },
            }
        )
    )


if __name__ == "__main__":
    main()
