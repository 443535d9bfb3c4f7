"""Settings: environment, defaults, and the checks made before anything is enqueued."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalfleet.schema.errors import ConfigurationError
from evalfleet.schema.settings import Settings, validate_base_url


def test_database_defaults_to_a_sqlite_file_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("EVALFLEET_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Settings().effective_database_url == f"sqlite:///{tmp_path / 'evalfleet.db'}"


def test_settings_come_from_a_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EVALFLEET_BROKER_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("EVALFLEET_BROKER_URL=redis://example:6379/1\n")
    assert Settings().broker_url == "redis://example:6379/1"


def test_a_missing_key_with_a_remote_base_url_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="TOGETHER_API_KEY is not set"):
        Settings().api_key_for(None)
    with pytest.raises(ConfigurationError, match="TOGETHER_API_KEY"):
        Settings().api_key_for("https://api.together.xyz")


def test_a_local_base_url_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    assert Settings().api_key_for("http://127.0.0.1:8000")


def test_a_base_url_ending_in_v1_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigurationError, match=r"host only \(http://127.0.0.1:8000\)"):
        validate_base_url("http://127.0.0.1:8000/v1")
    assert validate_base_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
