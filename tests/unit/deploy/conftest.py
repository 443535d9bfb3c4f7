"""Fixtures shared by the deployment tests."""

from __future__ import annotations

import pytest

from evalfleet.schema.settings import Settings


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable the settings read from the test process's environment."""
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)
