"""The Docker side of the cluster test: the tools (Debian's docker.io, docker-compose,
debootstrap), a Docker engine (started when none runs, stopped when we started it), and the
compose project the test runs (docker-compose.yml with bench/cluster-compose.yml on top)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from progress import say

ROOT = Path(__file__).resolve().parents[1]
OVERRIDE = ROOT / "bench" / "cluster-compose.yml"
PACKAGES = {
    "dockerd": "docker.io",
    "docker-compose": "docker-compose",
    "debootstrap": "debootstrap",
}
# The classic builder: compose 1.29 with the docker CLI would ask for buildx, which Debian's
# docker.io does not ship.
BUILD_ENV = {"DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0"}


def sh(*argv: str, timeout: float = 600, check: bool = True, env: dict[str, str] | None = None,
       quiet: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run argv; a failure (when `check`) raises with its output, which is otherwise kept."""
    done = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, **BUILD_ENV, **(env or {})},
    )  # fmt: skip
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... exit {done.returncode}:\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")  # fmt: skip
    if not quiet and done.returncode != 0:
        say(f"{' '.join(argv[:4])} exit {done.returncode}: {done.stderr.strip()[-300:]}")
    return done


def install_tools() -> list[str]:
    """apt-get install what is missing (CI runs as root on a fresh machine); what it installed."""
    missing = [package for tool, package in PACKAGES.items() if not shutil.which(tool)]
    if missing:
        say(f"apt-get install {' '.join(missing)}")
        sh("apt-get", "update", "-qq", timeout=600)
        sh("apt-get", "install", "-y", "-qq", *missing, timeout=1200,
           env={"DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip
    return missing


def engine_running() -> bool:
    return sh("docker", "info", timeout=30, check=False, quiet=True).returncode == 0


class Engine:
    """A Docker engine for the test: the running one, or `dockerd` started here (and stopped
    by `stop`, with only what was started here)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_path = log_dir / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_here = False

    def start(self) -> None:
        if engine_running():
            say("using the Docker engine that is running")
            return
        say("starting dockerd")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT)
        self.started_here = True
        deadline = time.monotonic() + 60
        while not engine_running():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not start; see {self.log_path}")
            time.sleep(1)

    def stop(self) -> None:
        if self.process is None:
            return
        say("stopping the dockerd started here")
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


class Compose:
    """One compose project: `docker-compose -p NAME -f docker-compose.yml -f OVERRIDE
    --profile sim`, its variables in `env`."""

    def __init__(self, project: str, env: dict[str, str]) -> None:
        self.project = project
        self.env = env
        self.base = ["docker-compose", "-p", project, "-f", str(ROOT / "docker-compose.yml"),
                     "-f", str(OVERRIDE), "--profile", "sim"]  # fmt: skip

    def __call__(self, *args: str, timeout: float = 900, check: bool = True) -> str:
        return sh(*self.base, *args, timeout=timeout, check=check, env=self.env).stdout

    def ok(self, *args: str, timeout: float = 60) -> bool:
        return sh(*self.base, *args, timeout=timeout, check=False, quiet=True,
                  env=self.env).returncode == 0  # fmt: skip

    def popen(self, *args: str, log: Path) -> subprocess.Popen[str]:
        with log.open("w") as out:
            return subprocess.Popen(
                [*self.base, *args], stdout=out, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, **BUILD_ENV, **self.env},
            )  # fmt: skip

    @property
    def network(self) -> str:
        return f"{self.project}_default"

    def containers(self, service: str, running_only: bool = True) -> list[str]:
        """The ids of the service's replicas (not `docker-compose run` one-offs), oldest first."""
        argv = ["docker", "ps", "-q", "--no-trunc",
                "--filter", f"label=com.docker.compose.project={self.project}",
                "--filter", f"label=com.docker.compose.service={service}",
                "--filter", "label=com.docker.compose.oneoff=False"]  # fmt: skip
        if not running_only:
            argv.append("--all")
        ids = sh(*argv, timeout=60).stdout.split()
        return sorted(ids, key=lambda cid: inspect(cid)["Created"])

    def psql(self, sql: str) -> list[list[str]]:
        """Rows of `sql` in the project's database (psql inside the postgres container:
        the database is not published on the host)."""
        out = self("exec", "-T", "postgres", "psql", "-U", "evalfleet", "-d", "evalfleet",
                   "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql, timeout=60)  # fmt: skip
        return [line.split("\t") for line in out.splitlines() if line]

    def save_logs(self, folder: Path) -> None:
        """Every container's output (one-offs aside), for a look after `down` removed them."""
        argv = [
            "docker",
            "ps",
            "-aq",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
        ]
        for container in sh(*argv, timeout=60).stdout.split():
            name = inspect(container)["Name"].strip("/")
            (folder / f"{name}.log").write_text(logs(container))

    def down(self) -> None:
        self("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=300, check=False)


def inspect(container: str) -> dict[str, Any]:
    out = sh("docker", "inspect", container, timeout=60).stdout
    return dict(json.loads(out)[0])


def logs(container: str) -> str:
    done = sh("docker", "logs", container, timeout=120, check=False, quiet=True)
    return done.stdout + done.stderr
