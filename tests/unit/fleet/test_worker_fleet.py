"""The one harness of local worker processes and scratch databases: what a child inherits,
the names and logs of a fleet's workers, a kill and its replacement, a warm stop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evalfleet.embedded import EmbeddedRedis
from evalfleet.fleet import WorkerFleet, child_env, worker_command
from evalfleet.schema.errors import ServiceUnavailableError
from evalfleet.scratch_database import ScratchDatabase, database_url


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with EmbeddedRedis() as redis:
        yield redis.url


def test_a_child_inherits_the_environment_unless_asked_for_only_the_given_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a shell with its own evalfleet and Together settings
    monkeypatch.setenv("EVALFLEET_QUEUE", "from-the-shell")
    monkeypatch.setenv("TOGETHER_API_KEY", "the-users-key")
    monkeypatch.setenv("HOME_OF_TEST", "kept")
    given = {"EVALFLEET_BROKER_URL": "redis://x"}
    # Then the embedded default's children keep them, a bench's or a test's do not
    inherited = child_env(given)
    assert inherited["EVALFLEET_QUEUE"] == "from-the-shell"
    assert inherited["TOGETHER_API_KEY"] == "the-users-key"
    clean = child_env(given, clean=True)
    assert "EVALFLEET_QUEUE" not in clean and "TOGETHER_API_KEY" not in clean
    assert clean["HOME_OF_TEST"] == "kept" and clean["EVALFLEET_BROKER_URL"] == "redis://x"


def test_the_worker_command_names_the_pool_and_metrics_port_only_when_chosen() -> None:
    default = worker_command(4, "w0@%h")
    assert default[-5:] == ["worker", "--concurrency", "4", "--hostname", "w0@%h"]
    assert "--pool" not in default and "--metrics-port" not in default
    assert worker_command(4, "w0@%h", "prefork")[-2:] == ["--pool", "prefork"]
    assert worker_command(4, "w0@%h", None, 9100)[-2:] == ["--metrics-port", "9100"]


def test_a_scratch_database_url_keeps_the_admin_urls_server_and_query() -> None:
    admin = "postgresql://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    libpq = database_url(admin, "evalfleet_it_0123456789")
    assert libpq == "postgresql://postgres@127.0.0.1:5432/evalfleet_it_0123456789?sslmode=disable"
    assert ScratchDatabase("evalfleet_it_0123456789", libpq).url.startswith(
        "postgresql+psycopg://postgres@127.0.0.1:5432/evalfleet_it_0123456789"
    )


def test_a_killed_worker_leaves_the_fleet_and_its_replacement_takes_a_new_name(
    broker: str, tmp_path: Path
) -> None:
    env = child_env(
        {"EVALFLEET_BROKER_URL": broker, "EVALFLEET_DATABASE_URL": f"sqlite:///{tmp_path}/db"},
        clean=True,
    )
    # Given a fleet of two workers, ready
    with WorkerFleet(2, 1, env, tmp_path / "logs", name="t") as fleet:
        fleet.wait_ready()
        first = fleet.workers[0]
        # When one is killed and another started
        fleet.kill(first)
        (replacement,) = fleet.start_more(1)
        fleet.wait_ready()
        # Then the fleet holds the live two, named in the order started, each with its log
        assert [worker.name for worker in fleet.workers] == ["t1", "t2"]
        assert not first.alive() and first.process.returncode == -9
        assert fleet.pids() == [worker.pid for worker in fleet.alive()]
        assert "t2@" in replacement.log_path.read_text()
        fleet.check_alive()
        workers = list(fleet.workers)
    # And leaving the fleet stops every worker warmly
    assert [worker.process.returncode for worker in workers] == [0, 0]


def test_a_worker_that_exits_at_start_fails_the_wait_and_the_liveness_check(
    tmp_path: Path,
) -> None:
    # Given a worker without a broker (it refuses to start)
    env = child_env({"EVALFLEET_DATABASE_URL": f"sqlite:///{tmp_path}/db"}, clean=True)
    with WorkerFleet(1, 1, env, tmp_path / "logs") as fleet:
        # Then waiting for it fails, naming the logs, and so does the liveness check
        with pytest.raises(ServiceUnavailableError, match="workers did not start"):
            fleet.wait_ready(timeout=30)
        with pytest.raises(ServiceUnavailableError, match="a local worker exited with code"):
            fleet.check_alive()
        assert "EVALFLEET_BROKER_URL is not set" in fleet.workers[0].log_path.read_text()
