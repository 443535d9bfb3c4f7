"""The compose services' commands, parsed with the real evalfleet, Celery and Flower CLIs."""

from __future__ import annotations

import importlib.util
import shlex

import click
import pytest
from flower.command import is_flower_envvar
from unit.deploy.compose_files import (
    EVALFLEET_COMMANDS,
    SERVICES,
    argv_of,
    environment_of,
    is_pure_reference,
    option_value,
    parse_command_line,
)

from evalfleet.cli.main import cli as evalfleet_cli
from evalfleet.flower import check_bind
from evalfleet.schema.errors import ConfigurationError


@pytest.mark.parametrize("service_name", sorted(EVALFLEET_COMMANDS))
def test_every_evalfleet_command_in_the_compose_file_parses_with_the_real_cli(
    service_name: str,
) -> None:
    # Given the service's command, its variables replaced by their defaults or dummies
    argv = argv_of(EVALFLEET_COMMANDS[service_name])

    # When the real `evalfleet` click group parses it (no command runs)
    try:
        ctx = parse_command_line(evalfleet_cli, argv)
    except click.UsageError as exc:
        pytest.fail(f"{service_name}: `{shlex.join(argv)}` does not parse: {exc.format_message()}")

    # Then it resolves to a leaf command and every option it uses is one of that command's
    opts = {opt for param in ctx.command.params for opt in param.opts}
    used = {word.partition("=")[0] for word in argv if word.startswith("-")}
    assert used <= opts, f"{service_name}: unknown options {used - opts}"


def test_the_compose_file_runs_the_migration_the_workers_and_the_simulator_through_the_cli() -> (
    None
):
    # Given the project services whose command is `evalfleet ...`
    # When their subcommand paths are collected
    paths = {
        name: parse_command_line(evalfleet_cli, argv_of(service)).command_path
        for name, service in EVALFLEET_COMMANDS.items()
    }

    # Then the migration, the worker and the simulator are there, each with its own subcommand
    assert paths["migrate"].split()[1:] == ["db", "upgrade"]
    assert paths["worker"].split()[1:] == ["worker"]
    assert paths["simulator"].split()[1:] == ["sim"]


def test_the_worker_concurrency_default_is_a_positive_integer() -> None:
    # Given the worker's command with ${WORKER_CONCURRENCY:-...} at its default
    argv = argv_of(SERVICES["worker"])

    # When the CLI parses it
    params = parse_command_line(evalfleet_cli, argv).params

    # Then the concurrency is an integer the worker command accepts (at least 1)
    assert isinstance(params["concurrency"], int)
    assert params["concurrency"] >= 1


def test_the_flower_command_is_evalfleet_flower_on_every_address_behind_the_compose_auth() -> None:
    # Given the flower service's command and environment, and an installed Flower
    argv = argv_of(SERVICES["flower"])
    environment = environment_of(SERVICES["flower"])
    assert importlib.util.find_spec("flower") is not None

    # When the evalfleet CLI parses the command with the service's environment
    ctx = parse_command_line(evalfleet_cli, argv)

    # Then it is `evalfleet flower` listening beyond loopback (other containers and the
    # published port reach it), which the bind rule allows with the compose basic auth
    assert ctx.command.name == "flower"
    address = ctx.params["address"]
    assert address == "0.0.0.0"
    check_bind(address, environment["FLOWER_BASIC_AUTH"])
    # and would refuse without it (the password is the only guard of remote control)
    with pytest.raises(ConfigurationError, match="basic auth"):
        check_bind(address, None)


def test_flower_requires_basic_auth_and_publishes_only_on_the_loopback() -> None:
    # Given the flower service
    flower = SERVICES["flower"]
    argv = argv_of(flower)
    environment = environment_of(flower)

    # When its basic-auth setting is read (command line or FLOWER_BASIC_AUTH, which Flower
    # reads from its environment)
    assert is_flower_envvar("FLOWER_BASIC_AUTH")
    credentials = option_value(argv, "--basic-auth") or environment.get("FLOWER_BASIC_AUTH")

    # Then there is a user and a password, both from the environment,
    assert credentials, "flower runs without --basic-auth / FLOWER_BASIC_AUTH"
    user, sep, password = credentials.partition(":")
    assert sep and user and password
    raw = flower.get("environment", {}).get("FLOWER_BASIC_AUTH") or next(
        w for w in flower["command"] if "--basic-auth" in w
    )
    assert is_pure_reference(str(raw).replace("--basic-auth=", ""))
    # and every published port is bound to 127.0.0.1 and is the port Flower listens on
    port = option_value(argv, "--port") or "5555"
    assert flower.get("ports"), "flower is not published at all"
    for mapping in flower["ports"]:
        if isinstance(mapping, dict):
            assert mapping.get("host_ip") == "127.0.0.1"
            assert str(mapping["target"]) == port
        else:
            host_ip, _, rest = str(mapping).partition(":")
            assert host_ip == "127.0.0.1", f"flower published beyond the loopback: {mapping}"
            assert rest.split(":")[-1].split("/")[0] == port
