"""The bad-input catalogue: each is refused with a message naming the problem, and nothing is
left half-done (no run row without its items, no message without its run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select

from evalfleet.cli.main import cli
from evalfleet.schema.migrate import upgrade
from evalfleet.schema.models import Run

GOOD = {
    "source": "wikipedia",
    "story": "The cat sat on the mat.",
    "questions": ["Where did the cat sit?"],
    "answers": {"input_text": ["on the mat"], "answer_start": [8], "answer_end": [22]},
}


def jsonl(*records: object) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def without(field: str) -> dict[str, object]:
    return {k: v for k, v in GOOD.items() if k != field}


BAD_FILES: dict[str, tuple[str, bytes, str]] = {
    "truncated JSON": ("data.json", json.dumps([GOOD]).encode()[:-20], "invalid JSON at line 1"),
    "not JSON at all": ("data.jsonl", b"story,questions\nA,B\n", "line 1"),
    "missing story": ("data.jsonl", jsonl(GOOD, without("story")), "'story'"),
    "missing questions": ("data.jsonl", jsonl(without("questions")), "'questions'"),
    "missing answers": ("data.jsonl", jsonl(without("answers")), "'answers'"),
    "questions and answers of different lengths": (
        "data.jsonl",
        jsonl({**GOOD, "questions": ["Q1?", "Q2?"]}),
        "has 1 answers but field 'questions' has 2",
    ),
    "an empty story": ("data.jsonl", jsonl({**GOOD, "story": "   "}), "'story'"),
    "zero questions": (
        "data.jsonl",
        jsonl({**GOOD, "questions": [], "answers": {"input_text": []}}),
        "'questions'",
    ),
    "bytes that are not UTF-8": ("data.jsonl", jsonl(GOOD) + b'{"story": "\xff\xfe"}\n', "UTF-8"),
}


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A migrated database and a local API URL: only the input is wrong."""
    url = f"sqlite:///{tmp_path / 'evalfleet.db'}"
    upgrade(url)
    monkeypatch.setenv("EVALFLEET_DATABASE_URL", url)
    monkeypatch.setenv("TOGETHER_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("EVALFLEET_BROKER_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return url


def runs_in(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        count = int(connection.scalar(select(func.count()).select_from(Run)) or 0)
    engine.dispose()
    return count


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_data_file_is_refused_naming_file_and_problem_and_creates_nothing(
    case: str, database: str, tmp_path: Path
) -> None:
    # Given a data file with one defect
    name, content, expected = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(content)
    # When the user runs an evaluation on it
    result = CliRunner().invoke(
        cli, ["run", "--dataset", str(path), "--base", "a", "--finetuned", "b"]
    )
    # Then one clear error names the file and the problem, and no run exists
    assert result.exit_code == 1, result.output
    assert name in result.output and expected in result.output, result.output
    assert "Traceback" not in result.output
    assert runs_in(database) == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--limit", "0"], "--limit must be a positive number"),
        (["--limit", "-1"], "--limit must be a positive number"),
        (["--dataset", "squad-v9"], "unknown data set 'squad-v9'"),
        (["--history", "everything"], "'everything' is not one of"),
        (["--max-tokens", "0"], "--max-tokens must be at least 1"),
        (["--rpm", "-5"], "--rpm must be positive"),
        (["--model", "no-equals-sign"], "expected LABEL=MODEL_NAME"),
        (["--price", "m=1"], "expected MODEL=IN,OUT"),
        (["--mode", "batch", "--history", "model"], "--mode batch needs independent turns"),
        (["--mode", "batch", "--batch-price", "m=x,1"], "--batch-price 'm=x,1': expected"),
        (["--mode", "offline"], "'offline' is not one of"),
        (["--samples", "0"], "--samples must be at least 1, got 0"),
        (["--samples", "3"], "--samples 3 needs --temperature above 0"),
        (
            ["--samples", "3", "--temperature", "0.7", "--mode", "batch"],
            "--samples above 1 is not supported with --mode batch yet",
        ),
    ],
)
def test_a_bad_option_is_refused_naming_it_and_creates_nothing(
    args: list[str], expected: str, database: str
) -> None:
    result = CliRunner().invoke(cli, ["run", "--base", "a", "--finetuned", "b", *args])
    assert result.exit_code != 0 and expected in result.output, result.output
    assert runs_in(database) == 0
