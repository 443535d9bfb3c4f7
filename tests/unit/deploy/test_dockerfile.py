"""The Dockerfile and .dockerignore, checked against pyproject.toml and the repository."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from unit.deploy.compose_files import DOCKERFILE, ROOT

DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"


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


def build_args() -> dict[str, str]:
    """Each ARG of the Dockerfile with its default ("" when it has none)."""
    args = [a.partition("=") for i, a in dockerfile_instructions() if i == "ARG"]
    return {name.strip(): default.strip() for name, _, default in args}


def with_defaults(text: str) -> str:
    """`text` with every ${ARG} / $ARG replaced by the ARG's default, as a plain build does."""
    defaults = build_args()
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m[1], m[0]), text)


def dockerfile_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not --from), build
    arguments at their defaults."""
    copies = []
    for instruction, arguments in dockerfile_instructions():
        if instruction != "COPY":
            continue
        words = [with_defaults(w) for w in shlex.split(arguments) if not w.startswith("--")]
        if any(w.startswith("--from") for w in shlex.split(arguments)):
            continue
        copies.append((words[:-1], words[-1]))
    return copies


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


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
    base = with_defaults(next(a for instruction, a in instructions if instruction == "FROM"))
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
