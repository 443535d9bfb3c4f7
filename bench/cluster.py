"""Cluster test on real containers (`make cluster-test`): docker-compose.yml with the
simulator, workers SIGKILLed, partitioned, stopped warm and scaled up, Redis restarted, all
during one run over the 20-story CoQA sample; then the same run without faults.

    .venv/bin/python bench/cluster.py [--workers 3] [--scale-to 5] [--concurrency 4]
                                      [--keep] [--log-dir DIR]

As root on a Debian machine: installs docker.io, docker-compose and debootstrap when
missing, starts dockerd when none runs (and stops it at the end), and builds local
stand-ins for the official images when no registry answers (docker/build-local-images.sh).
Checks: every (model, story, turn) answered exactly once, one aggregation, the same scores
as the fault-free run, the workers' scraped metrics against the answers in SQL, Flower
(headless Chromium, basic auth) listing the workers by name and the run's tasks by run,
model and story. Progress lines start with '#'; the last line
is one JSON object. Exit status 1 when a check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from cluster_checks import (
    answer_count,
    check_flower,
    every_node_name,
    outcome,
    run_state,
    running_node_names,
    scores,
    workers_answering,
)
from cluster_docker import OVERRIDE, ROOT, Compose, Engine, install_tools
from cluster_faults import Faults, fire_during
from cluster_images import choose_images, extra_ca_certs
from cluster_metrics import compare, scrape_answers
from progress import say

from evalfleet.fleet import free_port
from evalfleet.producer.loaders.registry import load_dataset_spec
from evalfleet.simulator.config import DEMO_MODELS

# The shared data folder (not in the repository), mounted read-only into the workers.
DATA_DIR = Path(os.environ.get("EVALFLEET_DATA_DIR") or ROOT.parent / "shared" / "data")
SAMPLE = "coqa/coqa-validation-first20.jsonl"  # under DATA_DIR, mounted as /data
PROJECT = "evalfleet-cluster-test"
FLOWER_USER = "admin"
RUN_TIMEOUT_S = 1200.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3, help="replicas at the start")
    parser.add_argument("--scale-to", type=int, default=5, help="replicas after scaling up")
    # Few items per replica: work stays queued for the replicas the scale-up adds.
    parser.add_argument("--concurrency", type=int, default=2, help="items per replica")
    # Without a limit the simulator answers the sample in seconds, before the faults.
    parser.add_argument("--rpm", type=float, default=150.0, help="per model, cluster-wide")
    parser.add_argument("--keep", action="store_true", help="leave the project running")
    parser.add_argument("--log-dir", type=Path, default=None)
    return parser.parse_args()


def project_env(concurrency: int) -> dict[str, str]:
    """The compose variables: fresh passwords, the simulator, the data folder."""
    return {
        "REDIS_PASSWORD": secrets.token_hex(16),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "FLOWER_USER": FLOWER_USER,
        "FLOWER_PASSWORD": secrets.token_hex(16),
        "FLOWER_PORT": str(free_port()),
        "TOGETHER_API_KEY": "",
        "TOGETHER_BASE_URL": "http://simulator:8000",
        "WORKER_CONCURRENCY": str(concurrency),
        "EVALFLEET_IMAGE": "evalfleet:cluster-test",
        "EVALFLEET_DATA_DIR": str(DATA_DIR),
    }


def wait_for(what: str, ready: Any, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:g}s")
        time.sleep(1)


def simulator_up(compose: Compose) -> bool:
    probe = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
    return compose.ok("exec", "-T", "simulator", "python", "-c", probe)


def start_run(compose: Compose, args: argparse.Namespace, log: Path) -> subprocess.Popen[str]:
    """`docker-compose run --rm worker evalfleet run ... --wait`: the producer in the network."""
    return compose.popen(
        "run", "--rm", "--no-deps", "worker", "evalfleet", "run",
        "--dataset", f"/data/{SAMPLE}", "--limit", str(args.stories), "--no-cache",
        "--rpm", f"{args.rpm:g}",
        "--base", DEMO_MODELS["base"], "--finetuned", DEMO_MODELS["finetuned"], "--wait",
        log=log,
    )  # fmt: skip


def new_run_id(compose: Compose, previous: int) -> int:
    found: list[int] = []

    def created() -> bool:
        rows = compose.psql("SELECT coalesce(max(id), 0) FROM runs")
        found.append(int(rows[0][0]))
        return found[-1] > previous

    wait_for("the run's row", created)
    return found[-1]


def finish(process: subprocess.Popen[str], log: Path, what: str) -> None:
    try:
        code = process.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        raise RuntimeError(f"{what}: still running after {RUN_TIMEOUT_S:g}s; see {log}") from None
    if code != 0:
        raise RuntimeError(f"{what}: exit {code}:\n{log.read_text()[-3000:]}")


class FlowerCheck(threading.Thread):
    """The Flower check in the background, so the faults after it fire on time."""

    def __init__(self, compose: Compose, run_id: int) -> None:
        super().__init__(daemon=True)
        self.compose, self.run_id = compose, run_id
        self.result: dict[str, Any] = {"checked": False}

    def run(self) -> None:
        try:
            # The replicas just added print their node names once they have started.
            wait_for("the new workers' names", lambda: len(running_node_names(self.compose))
                     == len(self.compose.containers("worker")), timeout=120)  # fmt: skip
            names = running_node_names(self.compose)
            env = self.compose.env
            self.result = {"checked": True, **check_flower(
                int(env["FLOWER_PORT"]), env["FLOWER_USER"], env["FLOWER_PASSWORD"], names,
                every_node_name(self.compose), self.run_id)}  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported in the JSON (pytest's skip too)
            self.result = {"checked": False, "error": f"{type(exc).__name__}: {exc}"}


def faulty_run(compose: Compose, args: argparse.Namespace, expected: int, log_dir: Path,
               lease_s: float) -> dict[str, Any]:  # fmt: skip
    faults = Faults(compose, lease_s, args.scale_to)
    started = time.monotonic()
    log = log_dir / "run-faults.log"
    process = start_run(compose, args, log)
    run_id = new_run_id(compose, 0)
    flower = FlowerCheck(compose, run_id)

    def ended() -> bool:
        return process.poll() is not None or run_state(compose, run_id) in ("done", "failed")

    missed = fire_during(
        faults, lambda: answer_count(compose, run_id), ended, expected,
        after={"scale_up": flower.start},
    )  # fmt: skip
    finish(process, log, "the run with faults")
    wall_s = round(time.monotonic() - started, 1)
    if flower.is_alive() or flower.ident is not None:
        flower.join(timeout=300)
    return {"run_id": run_id, "wall_s": wall_s, "faults": faults.by_kind(),
            "nodes_before_scale_up": faults.nodes_before_scale_up,
            "fault_details": faults.done, "faults_missed": missed,
            "flower": flower.result}  # fmt: skip


def fault_free_run(compose: Compose, args: argparse.Namespace, previous: int,
                   log_dir: Path) -> tuple[int, float]:  # fmt: skip
    started = time.monotonic()
    log = log_dir / "run-fault-free.log"
    process = start_run(compose, args, log)
    run_id = new_run_id(compose, previous)
    finish(process, log, "the fault-free run")
    return run_id, round(time.monotonic() - started, 1)


def passed(result: dict[str, Any]) -> bool:
    flower = result["flower"]
    return (
        result["state"] == "done"
        and result["answers"] == result["expected_answers"]
        and result["duplicates"] == 0
        and result["missing"] == 0
        and result["aggregations"] == 1
        and result["scores_match_fault_free"]
        and not result["faults_missed"]
        and result["new_workers_answered"] >= 1
        and result["metrics"]["match"]
        and result["metrics"]["after_faults"]["at_most_sql"]
        and (
            not flower["checked"]
            or (flower["every_worker_listed"] and flower["task_rows_readable"])
        )  # fmt: skip
    )


def main() -> None:
    args = parse_args()
    begun = time.monotonic()
    log_dir = args.log_dir or Path("/tmp") / f"evalfleet-cluster-{time.strftime('%H%M%S')}"
    log_dir.mkdir(parents=True, exist_ok=True)
    spec = load_dataset_spec(str(DATA_DIR / SAMPLE), limit=args.stories)
    expected = len(DEMO_MODELS) * sum(len(story.questions) for story in spec.stories)
    lease_s = float(yaml.safe_load(OVERRIDE.read_text())["services"]["worker"]["environment"]
                    ["EVALFLEET_LEASE_S"])  # fmt: skip
    installed = install_tools()
    engine = Engine(log_dir)
    engine.start()
    compose: Compose | None = None
    try:
        images_started = time.monotonic()
        env = {**project_env(args.concurrency), **choose_images(), **extra_ca_certs()}
        compose = Compose(PROJECT, env)
        compose.down()  # a project left by an interrupted test
        compose("up", "-d", "--build", "--scale", f"worker={args.workers}", timeout=2400)
        up_s = round(time.monotonic() - images_started, 1)
        wait_for("the simulator", lambda: simulator_up(compose))
        say(f"up in {up_s}s with {args.workers} workers; {expected} answers expected")
        chaos = faulty_run(compose, args, expected, log_dir, lease_s)
        result = {**outcome(compose, chaos["run_id"], expected)}
        seen = workers_answering(compose)
        scraped_after_faults = scrape_answers(compose)
        say(f"run {chaos['run_id']}: {result}; now the same run without faults")
        clean_id, clean_wall_s = fault_free_run(compose, args, chaos["run_id"], log_dir)
        metrics = compare(
            scraped_after_faults, scrape_answers(compose),
            result["answers"], answer_count(compose, clean_id),
        )  # fmt: skip
        chaos_scores, clean_scores = scores(compose, chaos["run_id"]), scores(compose, clean_id)
    finally:
        if compose is not None:
            compose.save_logs(log_dir)
        if compose is not None and not args.keep:
            compose.down()
        if not args.keep:
            engine.stop()
    result.update({
        "scores_match_fault_free": chaos_scores == clean_scores,
        "scores": chaos_scores,
        "fault_free_scores": clean_scores,
        "workers_seen": len(seen),
        "answer_tasks_by_worker": seen,
        # Nodes that started with the scale-up and finished answer tasks: they took work.
        "new_workers_answered": len(set(seen) - chaos["nodes_before_scale_up"]),
        "faults": chaos["faults"],
        "faults_missed": chaos["faults_missed"],
        "fault_details": chaos["fault_details"],
        "flower": chaos["flower"],
        "metrics": metrics,
        "wall_s": chaos["wall_s"],
        "fault_free_wall_s": clean_wall_s,
        "up_s": up_s,
        "total_s": round(time.monotonic() - begun, 1),
        "images": {k: v for k, v in env.items() if k.endswith("_IMAGE")},
        "installed": installed,
        "dockerd_started_here": engine.started_here,
        "logs": str(log_dir),
    })  # fmt: skip
    result["passed"] = passed(result)
    print(json.dumps(result))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
