"""Fixtures of the CLI's unit tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalfleet.schema.migrate import upgrade

RECORD = {
    "source": "wikipedia",
    "story": "The cat sat on the mat.",
    "questions": ["Where did the cat sit?"],
    "answers": {"input_text": ["on the mat"], "answer_start": [8], "answer_end": [22]},
}


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A migrated database, no broker, no API settings: each test names its endpoint."""
    for name in ("EVALFLEET_BROKER_URL", "TOGETHER_API_KEY", "TOGETHER_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'evalfleet.db'}"
    upgrade(url)
    monkeypatch.setenv("EVALFLEET_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text(json.dumps(RECORD) + "\n")
    return url
