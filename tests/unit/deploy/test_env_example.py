""".env.example, checked against the variables docker-compose.yml reads."""

from __future__ import annotations

from unit.deploy.compose_files import ENV_EXAMPLE, compose_variables


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
