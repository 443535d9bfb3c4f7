"""docker-compose.yml, the Dockerfile and .env.example, checked against the code they run.

No Docker engine runs here, so nothing is started: the compose file is parsed with
yaml.safe_load, its variables are substituted as Compose would, and every command, variable and
URL is checked against the real click CLI, Celery app, Flower and settings.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from celery.bin.celery import celery as celery_cli
from flower.command import is_flower_envvar, is_flower_option
from packaging.specifiers import SpecifierSet
from sqlalchemy.engine import make_url

from evalfleet.cli.main import cli as evalfleet_cli
from evalfleet.schema.settings import Settings, is_local_url, validate_base_url

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
PYPROJECT = ROOT / "pyproject.toml"

COMPOSE_TEXT = COMPOSE_FILE.read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; $${...} is a literal.
VARIABLE = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|AUTH", re.IGNORECASE)
URL_USERINFO = re.compile(r"://(?P<user>[^:@/\s]*):(?P<password>[^@\s]*)@")


# --- helpers ------------------------------------------------------------------------------------


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


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable the settings read from the test process's environment."""
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)


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


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending:
        logical.append(pending)
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def dockerfile_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not --from)."""
    copies = []
    for instruction, arguments in dockerfile_instructions():
        if instruction != "COPY":
            continue
        words = [w for w in shlex.split(arguments) if not w.startswith("--")]
        if any(w.startswith("--from") for w in shlex.split(arguments)):
            continue
        copies.append((words[:-1], words[-1]))
    return copies


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def env_example() -> list[tuple[str, str, str]]:
    """(name, value, the line before it) of every assignment in .env.example."""
    entries = []
    previous = ""
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and "=" in stripped:
            name, _, value = stripped.partition("=")
            entries.append((name.strip(), value.strip(), previous))
        previous = stripped
    return entries


def seconds(duration: str) -> float:
    """A Compose duration such as 120s, 2m or 1m30s, in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


EVALFLEET_COMMANDS = {
    name: service
    for name, service in project_services().items()
    if argv_of(service)[:1] == ["evalfleet"]
}


# --- the CLI, Celery and Flower -----------------------------------------------------------------


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


def test_the_flower_command_loads_the_workers_celery_app_with_an_installed_flower() -> None:
    # Given the flower service's command
    argv = argv_of(SERVICES["flower"])
    assert argv[0] == "celery"

    # When Celery's own click CLI parses it (flower is a subcommand only when installed)
    assert importlib.util.find_spec("flower") is not None
    ctx = parse_command_line(celery_cli, argv)

    # Then the subcommand is flower, every flower argument is a Flower option,
    assert ctx.command.name == "flower"
    for word in ctx.params["tornado_argv"]:
        assert is_flower_option(word), f"flower does not know {word}"
    # and --app names the workers' Celery app, loaded as `celery --app` loads it
    assert ctx.parent is not None
    app = find_app(ctx.parent.params["app"])
    assert isinstance(app, Celery)
    assert app.main == "evalfleet"


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


# --- settings and URLs --------------------------------------------------------------------------


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


# --- the shape of the deployment ----------------------------------------------------------------


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


# --- secrets ------------------------------------------------------------------------------------


def test_no_password_has_a_default_value() -> None:
    # Given every variable the compose file reads, with how it is used
    # Then secrets are required (${VAR:?...}) wherever they are used; only an API key may
    # default to empty (allowed with the simulator, documented in .env.example)
    for name, operators in compose_variables().items():
        if not SECRET_NAME.search(name):
            continue
        for match in compose_references():
            if match["name"] != name or match["op"] not in (":-", "-"):
                continue
            assert name.endswith("API_KEY") and match["arg"] == "", (
                f"${{{name}}} has the default {match['arg']!r}"
            )
        if "PASSWORD" in name:
            assert operators <= {":?", "?"}, f"${{{name}}} is not required everywhere"


def test_no_literal_password_is_written_in_the_compose_file() -> None:
    # Given every place a secret goes: secret-named variables, URL passwords, --requirepass
    # and --basic-auth values
    slots: list[tuple[str, str]] = []
    for service_name, service in SERVICES.items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        slots += [
            (f"{service_name}.{key}", str(value))
            for key, value in environment.items()
            if SECRET_NAME.search(key)
        ]
        command = [str(w) for w in service.get("command", [])]
        for option in ("--requirepass", "--basic-auth", "-a"):
            value = option_value(command, option)
            if value is not None:
                slots.append((f"{service_name} {option}", value))
    for text in all_strings(COMPOSE):
        slots += [("URL password", m["password"]) for m in URL_USERINFO.finditer(text)]

    # Then each is a reference to the environment, never a literal value
    assert slots
    for where, value in slots:
        if value == "":
            continue
        assert is_pure_reference(value), f"{where} holds a literal secret"


# --- the Dockerfile -----------------------------------------------------------------------------


def test_the_dockerfile_copies_every_package_pyproject_includes() -> None:
    # Given the folders pyproject.toml's package-dir installs under `evalfleet`
    packages = set(pyproject()["tool"]["setuptools"]["package-dir"].values())

    # When the Dockerfile's COPY instructions are read
    copies = dockerfile_copies()

    # Then each package is copied as a folder of its own name (`COPY a b dest/` would copy
    # the contents of a and b into dest instead)
    for package in sorted(packages):
        assert any(
            sources == [package] and Path(destination.rstrip("/")).name == package
            for sources, destination in copies
        ), f"the Dockerfile does not copy {package}/ as a folder"


def test_the_dockerfile_installs_the_project_and_runs_evalfleet_as_non_root() -> None:
    # Given the Dockerfile and pyproject.toml
    instructions = dockerfile_instructions()
    project = pyproject()["project"]
    copied = [source for sources, _ in dockerfile_copies() for source in sources]

    # Then it copies pyproject.toml and the readme it names, and installs the project,
    assert "pyproject.toml" in copied
    assert any(fnmatch.fnmatch(project["readme"], pattern) for pattern in copied)
    runs = " ".join(arguments for instruction, arguments in instructions if instruction == "RUN")
    assert re.search(r"pip install (\S+ )*\.(\s|;|&|$)", runs)
    # its base image's Python satisfies requires-python,
    base = next(arguments for instruction, arguments in instructions if instruction == "FROM")
    version = re.search(r"python:(\d+\.\d+)", base)
    assert version and version[1] + ".0" in SpecifierSet(project["requires-python"])
    # it runs as a user other than root,
    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    # and its default command is the evalfleet entry point
    assert "evalfleet" in project["scripts"]
    commands = [a for i, a in instructions if i in ("CMD", "ENTRYPOINT")]
    assert commands and "evalfleet" in commands[-1]


def test_what_the_dockerfile_copies_exists_and_is_not_docker_ignored() -> None:
    # Given the sources the Dockerfile copies and the .dockerignore patterns
    sources = [source for sources, _ in dockerfile_copies() for source in sources]
    ignored = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]

    # Then every plain source exists (a glob may match nothing) and none is ignored,
    for source in sources:
        if not any(char in source for char in "*?["):
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    # and the secrets and local state stay out of the build context
    assert {".env", ".venv", ".git"} <= set(ignored)


# --- .env.example -------------------------------------------------------------------------------


def test_env_example_names_every_variable_the_compose_file_reads() -> None:
    # Given the variables the compose file reads and the ones .env.example documents
    used = compose_variables()
    documented = {name: value for name, value, _ in env_example()}

    # Then every one is in .env.example,
    missing = set(used) - set(documented)
    assert not missing, f".env.example lacks {sorted(missing)}"
    # and each required one has a placeholder, so `cp .env.example .env` is enough to start
    for name, operators in used.items():
        if operators & {":?", "?"}:
            assert documented[name], f"{name} is required but empty in .env.example"


def test_every_env_example_variable_is_explained_by_a_comment() -> None:
    # Given the assignments in .env.example
    entries = env_example()

    # Then each is preceded by a comment line, and each is one the compose file reads
    assert entries
    for name, _, previous in entries:
        assert previous.startswith("#"), f"{name} has no comment above it"
        assert name in compose_variables(), f"{name} is not read by docker-compose.yml"
