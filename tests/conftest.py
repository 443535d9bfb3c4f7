"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# The public data sets live next to the project, never inside it (../shared/data/README.md).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _missing(what: str) -> None:
    """Skip locally, but fail under CI, where a missing file means a broken setup."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is missing (CI=true, so this is a failure, not a skip)")
    pytest.skip(f"{what} is missing")


@pytest.fixture
def shared_data() -> Path:
    """The folder of shared real data sets (../shared/data from the project root)."""
    if not SHARED_DATA.is_dir():
        _missing(str(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture
def shared_file(shared_data: Path) -> Callable[[str], Path]:
    """A function from a path under ../shared/data to that file, skipping or failing if absent."""

    def find(relative: str) -> Path:
        path = shared_data / relative
        if not path.is_file():
            _missing(str(path))
        return path

    return find
