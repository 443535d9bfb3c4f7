"""Runs of the real-server tier: a few CoQA stories through real `evalfleet worker` processes,
PostgreSQL and Redis, against the llama.cpp server of conftest.py; and what a user checks
in the stored answers (imported by the tier's tests: tests/integration/real_server is on
sys.path through its conftest)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet import evalfleet, fleet_env, logs, run_args
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from evalfleet.fleet import WorkerFleet
from evalfleet.schema.models import Answer, Question, Story

SAMPLE = "coqa/coqa-validation-first20.jsonl"
# Two short stories of the sample (176 and 233 words), each with its first turns only: a
# few requests, each evaluated in full on two cores (serve_llama.py), keep the tier to
# minutes. The first turns of a CoQA conversation are a conversation of their own.
STORY_LINES = (12, 1)
TURNS = 6
QUESTIONS = len(STORY_LINES) * TURNS


def few_stories(shared_file: Callable[[str], Path], folder: Path) -> Path:
    """The chosen stories of the sample, their first TURNS turns, as a JSONL file."""
    lines = shared_file(SAMPLE).read_text().splitlines()
    records = []
    for index in STORY_LINES:
        record = json.loads(lines[index])
        record["questions"] = record["questions"][:TURNS]
        record["answers"] = {key: values[:TURNS] for key, values in record["answers"].items()}
        records.append(json.dumps(record))
    path = folder / "coqa-two-stories.jsonl"
    path.write_text("\n".join(records) + "\n")
    return path


@dataclass(frozen=True)
class LlamaServer:
    base_url: str  # host only, as TOGETHER_BASE_URL takes it
    aliases: tuple[str, str]
    log: Path


@dataclass(frozen=True)
class StoredAnswer:
    label: str
    story: str
    turn: int
    text: str | None
    error: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    references: tuple[str, ...]


@dataclass(frozen=True)
class TierRun:
    summary: dict[str, Any]  # `run --wait --json`
    answers: list[StoredAnswer]
    requests_log: str

    def of(self, label: str) -> list[StoredAnswer]:
        return [a for a in self.answers if a.label == label]


def run_on_llama(
    server: LlamaServer,
    dataset: Path,
    database_url: str,
    broker_url: str,
    queue: str,
    cwd: Path,
    *extra: str,
) -> TierRun:
    """`evalfleet run --wait --json` with the two aliases as base and fine-tuned, on a
    one-worker fleet (the server answers one request at a time), then the stored answers."""
    # A request may queue behind the others at the server: a generous timeout.
    env = fleet_env(database_url, broker_url, queue, server.base_url, EVALFLEET_API_TIMEOUT_S="600")
    upgraded = evalfleet(["db", "upgrade"], env, cwd)
    assert upgraded.returncode == 0, upgraded.stderr
    models = dict(zip(("base", "finetuned"), server.aliases, strict=True))
    with WorkerFleet(1, 2, env, cwd / "logs"):
        args = run_args(dataset, "--temperature", "0", *extra, "--wait", "--json", models=models)
        result = evalfleet(args, env, cwd, timeout=1800)
    assert result.returncode == 0, result.stderr + logs(cwd / "logs")
    summary = json.loads(result.stdout)
    return TierRun(summary, stored_answers(database_url, summary["run_id"]), logs(cwd / "logs"))


def stored_answers(database_url: str, run_id: int) -> list[StoredAnswer]:
    engine = create_engine(database_url)
    with Session(engine) as session:
        rows = session.execute(
            select(
                Answer.model_label, Story.key, Answer.turn, Answer.text, Answer.error,
                Answer.finish_reason, Answer.prompt_tokens, Answer.completion_tokens,
                Question.references,
            )
            .join(Story, Story.id == Answer.story_id)
            .join(Question, (Question.story_id == Answer.story_id) & (Question.turn == Answer.turn))
            .where(Answer.run_id == run_id)
            .order_by(Answer.model_label, Story.position, Answer.turn)
        ).all()  # fmt: skip
    engine.dispose()
    return [StoredAnswer(*row[:-1], references=tuple(row[-1])) for row in rows]
