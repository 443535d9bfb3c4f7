"""The variables and URLs the compose file gives the services, read by the real settings."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from flower.command import is_flower_envvar
from sqlalchemy.engine import make_url
from unit.deploy.compose_files import (
    ENV_EXAMPLE,
    SERVICES,
    argv_of,
    environment_of,
    option_value,
    parse_command_line,
    project_services,
    settings_from,
)

from evalfleet.cli.main import cli as evalfleet_cli
from evalfleet.schema.settings import Settings, is_local_url, validate_base_url


def test_every_variable_set_for_the_project_image_is_one_the_code_reads() -> None:
    # Given the variables the settings read (their aliases) and those Flower reads
    aliases = {field.alias for field in Settings.model_fields.values() if field.alias}

    # When the environments of every service running the project image are collected
    set_names = {
        (service_name, name)
        for service_name, service in project_services().items()
        for name in environment_of(service)
    }

    # Then each one is read by schema.settings.Settings or by Flower (no typo goes unnoticed)
    unknown = {
        (service_name, name)
        for service_name, name in set_names
        if name not in aliases and not is_flower_envvar(name)
    }
    assert set_names, "no service of the project image sets any variable"
    assert not unknown, f"variables nothing reads: {sorted(unknown)}"


@pytest.mark.usefixtures("clean_environment")
def test_the_services_urls_point_at_the_compose_services_with_the_postgres_credentials() -> None:
    # Given the settings each project service gets from its compose environment
    postgres_env = environment_of(SERVICES["postgres"])
    for service_name, service in project_services().items():
        settings = settings_from(environment_of(service))

        # When its database and broker URLs are present
        if settings.database_url:
            url = make_url(settings.database_url)
            # Then the database URL is psycopg 3 on the postgres service, as its user and db
            assert url.drivername == "postgresql+psycopg", service_name
            assert url.host == "postgres" and url.host in SERVICES
            assert url.username == postgres_env["POSTGRES_USER"]
            assert url.database == postgres_env["POSTGRES_DB"]
            assert url.password == postgres_env["POSTGRES_PASSWORD"]
        if settings.broker_url:
            broker = urlsplit(settings.broker_url)
            # and the broker URL is the redis service, with the password Redis requires
            assert broker.scheme == "redis" and broker.hostname == "redis", service_name
            assert broker.hostname in SERVICES
            assert broker.password == option_value(argv_of(SERVICES["redis"]), "--requirepass")


def test_the_workers_and_flower_have_the_urls_they_need() -> None:
    # Given the worker, migrate and flower environments
    worker = environment_of(SERVICES["worker"])
    migrate = environment_of(SERVICES["migrate"])
    flower = environment_of(SERVICES["flower"])

    # Then workers get the database, the broker and the API settings, migrate the database,
    # and Flower the broker
    assert {"EVALFLEET_DATABASE_URL", "EVALFLEET_BROKER_URL"} <= set(worker)
    assert {"TOGETHER_API_KEY", "TOGETHER_BASE_URL"} <= set(worker)
    assert "EVALFLEET_DATABASE_URL" in migrate
    assert "EVALFLEET_BROKER_URL" in flower


@pytest.mark.usefixtures("clean_environment")
def test_the_simulator_is_reachable_by_name_without_an_api_key() -> None:
    # Given the simulator service's command and the URL .env.example tells users to set
    params = parse_command_line(evalfleet_cli, argv_of(SERVICES["simulator"])).params
    url = f"http://simulator:{params['port']}"

    # Then it listens on every interface of its container, on the documented port,
    assert params["host"] == "0.0.0.0"
    assert url in ENV_EXAMPLE.read_text(encoding="utf-8")
    # and that URL is a valid base URL that the settings treat as local (no key needed)
    assert validate_base_url(url) == url
    assert is_local_url(url)
    assert settings_from({"TOGETHER_API_KEY": ""}).api_key_for(url)
