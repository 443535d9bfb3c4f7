"""Answers cut by max_tokens through the whole pipeline: the simulator cuts them with
finish_reason "length", the workers store it, and every report counts and warns."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fleet import MODELS, clean_env, evalfleet, logs, run_args
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from evalfleet.schema.models import Answer
from evalfleet.simulator.config import SimConfig
from evalfleet.simulator.server import SimServer

pytestmark = pytest.mark.integration

SAMPLE = "coqa/coqa-validation-first20.jsonl"
MAX_TOKENS = 8  # below most of the verbose model's sentences, above every concise span


def test_a_small_max_tokens_is_counted_in_every_report_and_warned_about(
    shared_file: Callable[[str], Path], tmp_path: Path
) -> None:
    # Given the simulator with latency per token and some non-ASCII answers, and the
    # embedded default (SQLite, its own Redis and workers)
    dataset = shared_file(SAMPLE)
    config = SimConfig(latency_ms_mean=2, latency_ms_per_token=1, unicode_answer_rate=0.2)
    with SimServer(config) as sim:
        env = clean_env(TOGETHER_BASE_URL=sim.base_url)
        # When a user runs 4 stories with --max-tokens 8
        args = run_args(dataset, "--limit", "4", "--max-tokens", str(MAX_TOKENS))
        result = evalfleet([*args, "--wait", "--json"], env, tmp_path)
        assert result.returncode == 0, result.stderr + logs(tmp_path / ".evalfleet")
        summary = json.loads(result.stdout)
        run_id = str(summary["run_id"])
        table = evalfleet(["report", run_id], env, tmp_path)
        markdown = evalfleet(["report", run_id, "--format", "markdown"], env, tmp_path)
        exported = evalfleet(["export", run_id], env, tmp_path)
    assert summary["state"] == "done"
    # Then each model's count of cut answers is the count of stored "length" answers
    engine = create_engine(f"sqlite:///{tmp_path / 'evalfleet.db'}")
    with Session(engine) as session:
        stored = dict(
            session.execute(
                select(Answer.model_label, func.count())
                .where(Answer.finish_reason == "length")
                .group_by(Answer.model_label)
            ).all()
        )
        cut_texts = session.scalars(select(Answer.text).where(Answer.finish_reason == "length"))
        assert all(len((text or "").split()) == MAX_TOKENS for text in cut_texts)
        unfinished = session.scalar(
            select(func.count()).select_from(Answer).where(Answer.finish_reason.is_(None))
        )
    engine.dispose()
    assert unfinished == 0  # every answer stores the endpoint's finish_reason
    for label in MODELS:
        assert summary["models"][label]["truncated"] == stored.get(label, 0), label
    answered = summary["models"]["base"]["answered"]
    assert stored["base"] > 0.02 * answered and "finetuned" not in stored
    assert summary["models"]["base"]["truncated_share"] == round(stored["base"] / answered, 4)
    # And every format warns, naming twice the --max-tokens
    (warning,) = summary["warnings"]
    assert warning.startswith(f"warning: base: {stored['base']} of {answered} answers")
    assert warning.endswith(f"try --max-tokens {2 * MAX_TOKENS}")
    assert table.returncode == 0 and warning in " ".join(table.stdout.split())
    assert markdown.returncode == 0 and warning in markdown.stdout
    assert f"base {stored['base']} of {answered}" in markdown.stdout
    # And the export holds each answer's finish_reason, its non-ASCII text as stored
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert sum(r["finish_reason"] == "length" for r in records) == stored["base"]
    assert any(r["answer"] and not r["answer"].isascii() for r in records)
