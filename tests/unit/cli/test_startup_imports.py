"""`evalfleet --help`, `status` and `sim` import only what they use: the lazy group imports
one command's module, and the heavy libraries wait for the commands that need them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ENTRY = ["-m", "evalfleet"]  # evalfleet/__main__.py calls the `cli` the script calls
HEAVY = {"numpy", "matplotlib", "scipy", "celery", "sqlalchemy", "together", "datasets"}
# One line per imported module: "import time: SELF | CUMULATIVE | <indent>NAME".
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.MULTILINE)


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALFLEET_", "TOGETHER_"))}
    return {**env, "HOME": str(home), "COLUMNS": "200"}


def _top_level(importtime_output: str) -> set[str]:
    return {name.split(".")[0] for name in IMPORT_LINE.findall(importtime_output)}


def imported_by(args: list[str], cwd: Path) -> set[str]:
    """The top-level packages `evalfleet ARGS` imports, read from `python -X importtime`."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *ENTRY, *args],
        cwd=cwd, env=_environment(cwd), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return _top_level(result.stderr)


def test_the_help_imports_no_heavy_library(tmp_path: Path) -> None:
    modules = imported_by(["--help"], tmp_path)
    assert "evalfleet" in modules and "click" in modules  # the parse worked
    assert not modules & (HEAVY | {"pydantic", "pydantic_settings", "alembic"})


def test_a_command_help_imports_only_that_command(tmp_path: Path) -> None:
    modules = imported_by(["worker", "--help"], tmp_path)
    assert not modules & HEAVY  # the worker's Celery app is imported when a worker starts


def test_status_imports_neither_the_broker_nor_migrations_nor_plots(tmp_path: Path) -> None:
    # status reads the database (SQLAlchemy) and computes the paired statistics (numpy)
    modules = imported_by(["status", "--help"], tmp_path)
    assert {"sqlalchemy", "numpy"} <= modules
    assert not modules & {"celery", "kombu", "alembic", "matplotlib", "together", "datasets"}


def test_the_running_simulator_imports_no_numpy_matplotlib_or_celery(tmp_path: Path) -> None:
    # Given `evalfleet sim` started on a free port
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", *ENTRY, "sim", "--port", "0"],
        cwd=tmp_path, env=_environment(tmp_path), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []
    try:
        # When it says it serves (everything it runs on is imported by then)
        for line in process.stderr:
            lines.append(line)
            if line.startswith("simulator on "):
                break
    finally:
        process.terminate()
        process.wait(timeout=10)
    # Then it imported neither numpy, matplotlib nor Celery (nor any other heavy library)
    assert any(line.startswith("simulator on ") for line in lines), "".join(lines)[-2000:]
    modules = _top_level("".join(lines))
    assert "evalfleet" in modules
    assert not modules & (HEAVY | {"pydantic_settings"})
