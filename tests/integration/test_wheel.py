"""The built wheel installs one import name, `evalfleet`: in a fresh virtual environment it
sits beside PyPI's `schema` package without shadowing it, and `python -m evalfleet` works.

Needs the package registry: the fresh environment installs the wheel's dependencies
(quick from pip's cache) and PyPI's `schema`."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.registry]

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("compare", "db", "demo", "export", "reconcile", "report", "retry", "run", "sim",
            "status", "worker")  # fmt: skip
# The generic names the top-level folders would install under without package-dir.
GENERIC = {"schema", "producer", "workers", "aggregator", "simulator"}


def _run(args: list[str | Path], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    # Outside the source tree and without PYTHONPATH, so nothing but the installed wheel is found.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, ROOT], out, 300)
    (built,) = out.glob("evalfleet-*.whl")
    return built


def test_the_wheel_holds_one_top_level_name_and_its_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        declared = archive.read(top_level).decode().split()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"evalfleet"}
    assert declared == ["evalfleet"]
    assert not tops & GENERIC
    # The subpackages, the migrations and the demo set are inside it
    for path in ("evalfleet/__main__.py", "evalfleet/schema/__init__.py",
                 "evalfleet/producer/demo_data/coqa-demo.jsonl",
                 "evalfleet/producer/demo_data/ATTRIBUTION.md",
                 "evalfleet/producer/demo_data/LICENSE-CC-BY-SA-4.0.txt",
                 "evalfleet/producer/demo_data/LICENSE-Apache-2.0.txt"):  # fmt: skip
        assert path in names, path
    assert any(n.startswith("evalfleet/schema/migrations/versions/") for n in names)


def test_a_fresh_environment_imports_pypi_schema_beside_evalfleet(
    wheel: Path, tmp_path: Path
) -> None:
    # Given a fresh virtual environment with the wheel (and its dependencies) and PyPI's schema
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", wheel, "schema"], tmp_path, 900)
    # When both are imported from outside the source tree
    result = _run(
        [python, "-c", "import schema, evalfleet.schema; "
         "assert callable(schema.Schema), 'not PyPI schema'; "
         "print(schema.__file__); print(evalfleet.schema.__file__)"],
        tmp_path, 120,
    )  # fmt: skip
    # Then `schema` is PyPI's and `evalfleet.schema` is ours, both from the environment
    pypi_schema, ours = result.stdout.split()
    site = str(env_dir)
    assert pypi_schema.startswith(site) and ours.startswith(site)
    assert Path(ours).parent.name == "schema" and Path(ours).parent.parent.name == "evalfleet"
    # And `python -m evalfleet --help` lists every command
    help_text = _run([python, "-m", "evalfleet", "--help"], tmp_path, 120).stdout
    for command in COMMANDS:
        assert f"\n  {command} " in help_text, command


def test_the_unit_tests_pass_against_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    # Given a fresh environment with the wheel and its test dependencies, and not the sources
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", f"{wheel}[dev]"], tmp_path, 900)
    # When its pytest runs the unit tests from the project root (the script's folder, not the
    # current one, starts sys.path), with one more test that says where evalfleet came from
    (tmp_path / "test_where.py").write_text(
        "import evalfleet.schema\n"
        "def test_evalfleet_comes_from_the_environment():\n"
        f"    assert evalfleet.schema.__file__.startswith({str(env_dir)!r})\n"
    )
    result = _run(
        [env_dir / "bin" / "pytest", "-q", "-p", "no:cacheprovider",
         "-c", ROOT / "pyproject.toml", "--rootdir", ROOT,
         ROOT / "tests" / "unit", tmp_path / "test_where.py"],
        ROOT, 900,
    )  # fmt: skip
    # Then every unit test passes against the installed package
    assert " passed" in result.stdout and " failed" not in result.stdout
