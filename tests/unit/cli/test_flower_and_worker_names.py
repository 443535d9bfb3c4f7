"""`evalfleet flower` listens beyond loopback only behind basic auth and shows each task's
label; `evalfleet worker` takes a node name of its own unless given one, and serves its
metrics on the port it is given."""

from __future__ import annotations

import os
import re
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evalfleet.cli.main import cli
from evalfleet.cli.worker_cmd import default_node_name
from evalfleet.fleet import free_port
from evalfleet.flower import AUTH_ENV, check_bind, flower_url
from evalfleet.schema.errors import ConfigurationError

BROKER = "redis://127.0.0.1:9/0"


@pytest.fixture
def user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """A user in an empty folder: no evalfleet or Flower settings; what a command sets in
    this process' environment is undone after the test."""
    for name in ("EVALFLEET_DATABASE_URL", "EVALFLEET_BROKER_URL", "TOGETHER_API_KEY",
                 "TOGETHER_BASE_URL", AUTH_ENV, "EVALFLEET_WORKER_CONCURRENCY",
                 "EVALFLEET_WORKER_POOL", "EVALFLEET_METRICS_PORT"):  # fmt: skip
        monkeypatch.setitem(os.environ, name, "")
        monkeypatch.delitem(os.environ, name)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv the workers' Celery app is started with, instead of starting it."""
    from evalfleet.workers.app import app

    calls: list[list[str]] = []
    monkeypatch.setattr(app, "start", lambda argv: calls.append(list(argv)))
    monkeypatch.setattr(app, "worker_main", lambda argv: calls.append(list(argv)))
    return calls


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost"])
def test_flower_on_loopback_needs_no_password(address: str) -> None:
    check_bind(address, None)


@pytest.mark.parametrize("address", ["0.0.0.0", "", "::", "10.1.2.3", "evalfleet.example"])
def test_flower_beyond_loopback_is_refused_without_basic_auth(address: str) -> None:
    with pytest.raises(ConfigurationError, match="needs basic auth: set FLOWER_BASIC_AUTH"):
        check_bind(address, None)
    check_bind(address, "ops:secret")


@pytest.mark.parametrize("value", ["ops", "ops:", ":secret", "ops:secret,bob"])
def test_a_malformed_basic_auth_is_refused_without_repeating_it(value: str) -> None:
    with pytest.raises(ConfigurationError, match="expected USER:PASSWORD") as refused:
        check_bind("0.0.0.0", value)
    assert "secret" not in str(refused.value)


def test_flower_urls_are_ones_a_browser_opens() -> None:
    assert flower_url("127.0.0.1", 5555) == "http://127.0.0.1:5555/"
    assert flower_url("::1", 5555) == "http://[::1]:5555/"
    assert "0.0.0.0" not in flower_url("0.0.0.0", 5555)


def test_evalfleet_flower_on_every_address_without_a_password_starts_nothing(
    user: CliRunner, started: list[list[str]]
) -> None:
    result = user.invoke(
        cli, ["flower", "--address", "0.0.0.0"], env={"EVALFLEET_BROKER_URL": BROKER}
    )
    assert result.exit_code == 1 and "needs basic auth" in result.output
    assert started == []


def test_evalfleet_flower_needs_the_workers_broker(
    user: CliRunner, started: list[list[str]]
) -> None:
    result = user.invoke(cli, ["flower"])
    assert result.exit_code == 1 and "EVALFLEET_BROKER_URL is not set" in result.output
    assert "evalfleet run --flower" in result.output and started == []


def test_evalfleet_flower_behind_basic_auth_shows_each_tasks_label(
    user: CliRunner, started: list[list[str]]
) -> None:
    # Given the password in Flower's own variable (kept off the command line)
    env = {"EVALFLEET_BROKER_URL": BROKER, AUTH_ENV: "ops:secret"}
    result = user.invoke(cli, ["flower", "--address", "0.0.0.0", "--port", "5601"], env=env)
    # Then Flower starts on that address, with the args column (the task labels) shown
    assert result.exit_code == 0, result.output
    [argv] = started
    assert argv[:3] == ["flower", "--address=0.0.0.0", "--port=5601"]
    [columns] = [arg.partition("=")[2] for arg in argv if arg.startswith("--tasks_columns=")]
    assert columns.split(",")[:2] == ["name", "args"]
    assert "secret" not in " ".join(argv) and "(basic auth)" in result.output


def test_a_password_given_as_an_option_reaches_flower_through_its_environment(
    user: CliRunner, started: list[list[str]]
) -> None:
    args = ["flower", "--address", "0.0.0.0", "--basic-auth", "ops:secret"]
    result = user.invoke(cli, args, env={"EVALFLEET_BROKER_URL": BROKER})
    assert result.exit_code == 0, result.output
    assert os.environ[AUTH_ENV] == "ops:secret"
    assert not any("secret" in arg for arg in started[0])


def test_run_with_flower_on_a_configured_broker_is_refused_before_anything_is_written(
    user: CliRunner, tmp_path: Path
) -> None:
    data = tmp_path / "one.jsonl"
    data.write_text(
        '{"source": "wikipedia", "story": "A.", "questions": ["Q?"], '
        '"answers": {"input_text": ["a"]}}\n'
    )
    env = {"EVALFLEET_BROKER_URL": BROKER, "TOGETHER_BASE_URL": "http://127.0.0.1:9"}
    args = ["run", "--dataset", str(data), "--base", "a", "--finetuned", "b", "--flower"]
    result = user.invoke(cli, args, env=env)
    assert result.exit_code == 1 and "`evalfleet flower` watches the cluster" in result.output
    assert not (tmp_path / "evalfleet.db").exists()


def test_a_worker_without_a_name_takes_one_of_its_own(
    user: CliRunner, started: list[list[str]]
) -> None:
    # Given two workers started on this host without --name
    env = {"EVALFLEET_BROKER_URL": BROKER}
    for _ in range(2):
        assert user.invoke(cli, ["worker"], env=env).exit_code == 0
    names = [arg.partition("=")[2] for argv in started for arg in argv if "--hostname=" in arg]
    # Then each has its own Celery node name: this process' id, a random part, the host
    assert len(names) == 2 and names[0] != names[1]
    assert all(re.fullmatch(rf"evalfleet-{os.getpid()}-[0-9a-f]{{4}}@%h", n) for n in names)


@pytest.mark.parametrize("flag", ["--name", "--hostname"])
def test_a_given_worker_name_is_kept(user: CliRunner, started: list[list[str]], flag: str) -> None:
    env = {"EVALFLEET_BROKER_URL": BROKER}
    assert user.invoke(cli, ["worker", flag, "w1@%h"], env=env).exit_code == 0
    assert "--hostname=w1@%h" in started[0]


def test_default_node_names_differ_even_in_one_process() -> None:
    names: set[Any] = {default_node_name() for _ in range(20)}
    assert len(names) > 1


def test_a_worker_given_a_metrics_port_in_its_environment_serves_prometheus_metrics_there(
    user: CliRunner, started: list[list[str]]
) -> None:
    # Given a free port in EVALFLEET_METRICS_PORT
    port = free_port()
    env = {"EVALFLEET_BROKER_URL": BROKER, "EVALFLEET_METRICS_PORT": str(port)}
    # When the worker starts
    result = user.invoke(cli, ["worker"], env=env)
    # Then Celery starts, and /metrics on that port answers with the worker's metrics
    assert result.exit_code == 0, result.output
    assert len(started) == 1
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert "evalfleet_items_in_flight" in response.read().decode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pool", "prefork", "--metrics-port", "9100"], "needs --pool threads or solo"),
        (["--metrics-port", "0"], "between 1 and 65535"),
    ],
)
def test_metrics_a_worker_cannot_serve_are_refused_before_it_starts(
    user: CliRunner, started: list[list[str]], args: list[str], message: str
) -> None:
    # When a worker is asked for metrics with the prefork pool, or on port 0
    result = user.invoke(cli, ["worker", *args], env={"EVALFLEET_BROKER_URL": BROKER})
    # Then it refuses with the reason, and Celery never starts
    assert result.exit_code != 0 and message in result.output
    assert started == []


def test_a_metrics_port_already_taken_is_refused_with_the_port_named(
    user: CliRunner, started: list[list[str]]
) -> None:
    # Given a port another process listens on
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # When a worker is asked to serve its metrics there
        args = ["worker", "--metrics-port", str(port)]
        result = user.invoke(cli, args, env={"EVALFLEET_BROKER_URL": BROKER})
    # Then it refuses, naming the port, and Celery never starts
    assert result.exit_code != 0 and f"cannot serve metrics on port {port}" in result.output
    assert started == []


def test_a_worker_sends_task_events_only_when_asked(
    user: CliRunner, started: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalfleet.schema.queue import make_celery
    from evalfleet.schema.settings import Settings
    from evalfleet.workers.app import app

    for name in ("worker_send_task_events", "task_send_sent_event"):
        monkeypatch.setitem(app.conf, name, app.conf[name])  # undone after the test
    # Given the default settings, and settings asking for task events
    quiet = make_celery(Settings(), BROKER).conf
    loud = make_celery(Settings(EVALFLEET_TASK_EVENTS="true"), BROKER).conf
    # Then only the second sends them: three Redis publishes per task, for Flower only
    assert (quiet.worker_send_task_events, quiet.task_send_sent_event) == (False, False)
    assert (loud.worker_send_task_events, loud.task_send_sent_event) == (True, True)
    # And `evalfleet worker --events` turns them on from its first task
    env = {"EVALFLEET_BROKER_URL": BROKER}
    assert user.invoke(cli, ["worker", "--events"], env=env).exit_code == 0
    assert app.conf.worker_send_task_events is True and app.conf.task_send_sent_event is True
