"""`evalfleet sim` in its own process (its CPU does not share the bench's GIL)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from evalfleet.fleet import evalfleet_command, free_port


class Sim:
    """`evalfleet sim` in its own process, on a fresh port (so fresh rate-limiter keys)."""

    def __init__(self, log_dir: Path, latency_ms: float, rpm: int | None = None) -> None:
        self.port = free_port()
        args = ["sim", "--port", str(self.port), "--latency-ms", f"{latency_ms:g}"]
        if rpm is not None:
            args += ["--rpm", str(rpm)]
        log = (log_dir / f"sim-{self.port}.log").open("wb")
        self.process = subprocess.Popen(
            evalfleet_command(*args), stdout=log, stderr=subprocess.STDOUT
        )
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
