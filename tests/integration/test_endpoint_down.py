"""The endpoint dies mid-run: `evalfleet status` and `run --wait` say which model cannot
reach it, instead of a progress that sits still with nothing on screen."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fleet import RunWatcher, evalfleet, fleet_env, logs, run_args

from evalfleet.fleet import WorkerFleet, evalfleet_command
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.server import SimServer

pytestmark = pytest.mark.integration

SAMPLE = "coqa/coqa-validation-first20.jsonl"
UNREACHABLE = ("base: API unreachable (", "finetuned: API unreachable (")


def wait_for_status(run_id: int, env: dict[str, str], cwd: Path, timeout: float) -> str:
    """`evalfleet status` until it names both models unreachable; its last output."""
    deadline = time.monotonic() + timeout
    while True:
        shown = evalfleet(["status", str(run_id)], env, cwd)
        assert shown.returncode == 0, shown.stderr
        if all(line in shown.stdout for line in UNREACHABLE) or time.monotonic() > deadline:
            return str(shown.stdout)
        time.sleep(1)


def test_a_dead_endpoint_mid_run_is_named_by_status_and_run_wait(
    shared_file: Callable[[str], Path],
    postgres_url: str,
    redis_url: str,
    queue_name: str,
    tmp_path: Path,
) -> None:
    # Given a run waited for, with one worker, on a simulator that answers (slowly)
    dataset = shared_file(SAMPLE)
    sim = SimServer(SimConfig(latency_ms_mean=200))
    sim.start()
    env = fleet_env(postgres_url, redis_url, queue_name, sim.base_url, COLUMNS="200")
    assert evalfleet(["db", "upgrade"], env, tmp_path).returncode == 0
    watcher = RunWatcher(postgres_url)
    with WorkerFleet(1, 4, env, tmp_path / "logs") as workers:
        waiting = subprocess.Popen(
            evalfleet_command(*run_args(dataset, "--limit", "6", "--wait")),
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            watcher.wait_for_answers(1, 20)
            # When the endpoint goes away mid-run (its port now refuses connections)
            sim.stop()
            status = wait_for_status(1, env, tmp_path, timeout=90)
            state = watcher.state(1)
        finally:
            sim.stop()
            time.sleep(3)  # past the waiting command's next look at the run's health
            waiting.send_signal(signal.SIGINT)
            output, _ = waiting.communicate(timeout=60)
            watcher.close()
            for worker in list(workers.workers):  # its retries would outlast a warm shutdown
                workers.kill(worker)
    # Then `status` names each model, how its requests fail, and that they are retried
    assert state == "running", logs(tmp_path)
    for line in UNREACHABLE:
        assert line in status, status + logs(tmp_path)
    assert "), retrying\n" in status
    assert "open of 178" in status  # 6 stories, 89 questions, two models
    # And the waiting `run --wait` printed the same above its progress bar
    for line in UNREACHABLE:
        assert line in output, output
