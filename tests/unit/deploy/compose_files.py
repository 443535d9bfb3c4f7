"""docker-compose.yml and .env.example as the tests read them, and helpers to check them
against the code they run. `from unit.deploy.compose_files import ...` (tests/ is on
sys.path through its conftest).

No Docker engine runs here, so nothing is started: the compose file is parsed with
yaml.safe_load, and its variables are substituted as Compose would.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import yaml

from evalfleet.schema.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

COMPOSE_TEXT = COMPOSE_FILE.read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; $${...} is a literal.
VARIABLE = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


def dummy_value(name: str) -> str:
    """What a required or default-less variable stands for here (URL-safe)."""
    return f"test-{name.lower().replace('_', '-')}"


def substitute(text: str) -> str:
    """Interpolate like Compose: the default for `:-`/`-`, a dummy for `:?`, `?` or none."""

    def replace(match: re.Match[str]) -> str:
        if match["op"] in (":-", "-"):
            return match["arg"]
        return dummy_value(match["name"])

    return VARIABLE.sub(replace, text).replace("$$", "$")


def argv_of(service: dict[str, Any]) -> list[str]:
    """The service's command as an argv list, variables substituted."""
    command = service.get("command", [])
    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    return [substitute(word) for word in words]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment (mapping or list form), variables substituted."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {name: substitute("" if v is None else str(v)) for name, v in environment.items()}


def project_services() -> dict[str, dict[str, Any]]:
    """The services that run the image built from this directory (they have a `build`)."""
    return {name: service for name, service in SERVICES.items() if "build" in service}


def parse_command_line(root: click.Command, argv: list[str]) -> click.Context:
    """Parse argv with a real click CLI down to its leaf command, running no command callback.

    Option names, choices and types are checked exactly as at run time; an error raises
    click.UsageError. Between groups this does what click.Group.invoke does: parse the group's
    own options, then resolve the subcommand from what is left.
    """
    command, name, args, parent = root, argv[0], argv[1:], None
    while isinstance(command, click.Group):
        ctx = command.context_class(command, info_name=name, parent=parent)
        with ctx.scope(cleanup=False):
            rest = click.Command.parse_args(command, ctx, args)
        if not rest:
            raise click.UsageError(f"{name}: no subcommand given", ctx)
        subcommand_name, subcommand, args = command.resolve_command(ctx, rest)
        assert subcommand_name is not None and subcommand is not None
        command, name, parent = subcommand, subcommand_name, ctx
    return command.make_context(name, args, parent=parent)


def settings_from(environment: dict[str, str]) -> Settings:
    """Settings from this environment only: no `.env` file, no variable of the test process."""
    arguments: dict[str, Any] = {"_env_file": None, **environment}
    return Settings(**arguments)


def option_value(argv: list[str], option: str) -> str | None:
    """The value after `option` (or in `option=value`), None when absent."""
    for index, word in enumerate(argv):
        if word == option and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith(option + "="):
            return word.partition("=")[2]
    return None


def all_strings(node: Any) -> list[str]:
    """Every string value in the parsed compose tree (keys excluded)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for value in node.values() for text in all_strings(value)]
    if isinstance(node, list):
        return [text for value in node for text in all_strings(value)]
    return []


def compose_variables() -> dict[str, set[str]]:
    """Each variable the compose file reads, with the interpolation operators it is used with."""
    found: dict[str, set[str]] = {}
    for match in compose_references():
        found.setdefault(match["name"], set()).add(match["op"] or "")
    return found


def compose_references() -> list[re.Match[str]]:
    """Every `${...}` in the values of the parsed file (comments are not interpolated)."""
    return [match for text in all_strings(COMPOSE) for match in VARIABLE.finditer(text)]


def is_pure_reference(value: str) -> bool:
    """Only `${VAR...}` references (and separators such as ':'), no literal text."""
    return bool(VARIABLE.search(value)) and not re.search(r"[A-Za-z0-9]", VARIABLE.sub("", value))


EVALFLEET_COMMANDS = {
    name: service
    for name, service in project_services().items()
    if argv_of(service)[:1] == ["evalfleet"]
}
