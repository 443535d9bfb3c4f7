"""Flower for evalfleet's broker: its command line, the rule that it listens beyond loopback
only behind basic auth, and the local Flower of `evalfleet run --flower`."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from evalfleet.fleet import evalfleet_command, free_port
from evalfleet.schema.errors import ConfigurationError, ServiceUnavailableError
from evalfleet.startstop import StartStop

AUTH_ENV = "FLOWER_BASIC_AUTH"  # Flower reads it itself: the password stays off `ps`
DEFAULT_PORT = 5555
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
# Flower's default columns leave out `args`, the column that names the run, the model and
# the story of each task (schema/task_labels.py).
TASKS_COLUMNS = "name,args,state,received,started,runtime,worker,retries,uuid"
START_TIMEOUT_S = 30.0


def check_basic_auth(value: str) -> None:
    """Flower's format, USER:PASSWORD, several separated by commas; the error never repeats
    the value (it holds a password)."""
    for entry in value.split(","):
        user, sep, password = entry.partition(":")
        if not (sep and user and password):
            raise ConfigurationError(
                "--basic-auth (or FLOWER_BASIC_AUTH): expected USER:PASSWORD, several "
                "separated by commas"
            )


def check_bind(address: str, basic_auth: str | None) -> None:
    """Workers' names, task arguments and remote control (shutting workers down) are for
    the cluster's operators: beyond loopback only with a password."""
    if basic_auth:
        check_basic_auth(basic_auth)
    elif address not in LOOPBACK:
        where = f"address {address!r}" if address else "every address"
        raise ConfigurationError(
            f"Flower on {where} needs basic auth: set FLOWER_BASIC_AUTH=USER:PASSWORD "
            "(or --basic-auth), or listen on 127.0.0.1 only"
        )


def flower_url(address: str, port: int) -> str:
    host = address if address not in ("", "0.0.0.0", "::") else socket.gethostname()
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def flower_argv(address: str, port: int) -> list[str]:
    """`celery --app evalfleet.workers.app:app` then these: Flower for the app's broker."""
    return ["flower", f"--address={address}", f"--port={port}", f"--tasks_columns={TASKS_COLUMNS}"]


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As Tornado binds: a port a stopped Flower left in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class LocalFlower(StartStop):
    """`evalfleet flower` on loopback for a local broker, on port 5555 when free; its output
    goes to `log_dir/flower.log`."""

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self.env = dict(env)
        self.log_path = log_dir / "flower.log"
        self.port = DEFAULT_PORT if port_free(DEFAULT_PORT) else free_port()
        self.url = flower_url("127.0.0.1", self.port)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = evalfleet_command("flower", "--address", "127.0.0.1", "--port", str(self.port))
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServiceUnavailableError(f"Flower did not start: see {self.log_path}")
            time.sleep(0.2)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}healthcheck", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answers, behind the user's own FLOWER_BASIC_AUTH
        except OSError:
            return False

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
