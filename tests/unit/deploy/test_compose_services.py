"""The shape of the deployment: scaling, volumes, healthchecks, start order, profiles."""

from __future__ import annotations

import re

from unit.deploy.compose_files import (
    COMPOSE,
    DOCKERFILE,
    ROOT,
    SERVICES,
    argv_of,
    environment_of,
    is_pure_reference,
    option_value,
    project_services,
)

from evalfleet.schema.settings import Settings


def seconds(duration: str) -> float:
    """A Compose duration such as 120s, 2m or 1m30s, in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def test_the_worker_can_be_scaled() -> None:
    # Given the worker service
    worker = SERVICES["worker"]

    # Then nothing pins one replica: no container name, no hostname, no published port
    assert "container_name" not in worker
    assert "hostname" not in worker
    assert "ports" not in worker


def test_redis_and_postgres_are_not_published_on_the_host() -> None:
    for name in ("redis", "postgres", "simulator"):
        assert "ports" not in SERVICES[name], f"{name} is published on the host"


def test_redis_requires_a_password_persists_and_never_evicts() -> None:
    # Given the redis service's command
    redis = SERVICES["redis"]
    raw = [str(word) for word in redis["command"]]
    argv = argv_of(redis)

    # Then it requires a password from the environment,
    assert "--requirepass" in raw
    assert is_pure_reference(raw[raw.index("--requirepass") + 1])
    # appends every write to disk and refuses writes rather than dropping queued messages,
    assert option_value(argv, "--appendonly") == "yes"
    assert option_value(argv, "--maxmemory-policy") == "noeviction"
    # keeps its data in a named volume,
    assert any(str(v).split(":")[0] in COMPOSE["volumes"] for v in redis["volumes"])
    # and its healthcheck pings with the password (-a or REDISCLI_AUTH)
    check = " ".join(str(word) for word in redis["healthcheck"]["test"])
    assert "redis-cli" in check and "ping" in check
    assert " -a " in check or "REDISCLI_AUTH" in environment_of(redis)


def test_postgres_has_a_healthcheck_and_a_volume() -> None:
    # Given the postgres service
    postgres = SERVICES["postgres"]

    # Then its healthcheck asks pg_isready for the evalfleet user, its data is a named volume,
    check = " ".join(str(word) for word in postgres["healthcheck"]["test"])
    assert "pg_isready" in check
    assert f"-U {environment_of(postgres)['POSTGRES_USER']}" in check
    assert any(str(v).split(":")[0] in COMPOSE["volumes"] for v in postgres["volumes"])
    # and its password is required from the environment
    assert is_pure_reference(str(postgres["environment"]["POSTGRES_PASSWORD"]))


def test_the_migration_runs_once_before_any_worker_starts() -> None:
    # Given the migrate and worker services
    migrate = SERVICES["migrate"]
    depends = SERVICES["worker"]["depends_on"]

    # Then migrate is one-shot and waits for a healthy database,
    assert migrate.get("restart") == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    # and the worker starts after it succeeded, with a healthy broker and database
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["postgres"]["condition"] == "service_healthy"


def test_the_worker_has_time_for_a_warm_shutdown() -> None:
    # Given the worker's stop grace period and the API request timeout
    grace = seconds(str(SERVICES["worker"].get("stop_grace_period", "10s")))
    request_timeout = Settings.model_fields["api_timeout_s"].default

    # Then a request in flight at SIGTERM can end before Docker sends SIGKILL
    assert grace >= request_timeout


def test_the_simulator_runs_only_in_its_profile() -> None:
    # Given the simulator service
    # Then it starts only with `--profile ...`, and no always-on service depends on it
    assert SERVICES["simulator"].get("profiles")
    for name, service in SERVICES.items():
        assert "simulator" not in (service.get("depends_on") or {}), name


def test_the_project_services_run_the_image_built_from_the_dockerfile() -> None:
    # Given the services with a build section
    services = project_services()

    # Then they are the migration, workers, Flower and the simulator, all one image
    assert set(services) == {"migrate", "worker", "flower", "simulator"}
    assert len({str(service.get("image")) for service in services.values()}) == 1
    for service in services.values():
        build = service["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert (ROOT / context / "Dockerfile").resolve() == DOCKERFILE
