"""schema.db.upsert on PostgreSQL sends the rows as one JSON document (schema/pg_upsert.py):
what is stored must be exactly what the rows said, as the bound INSERT stored it."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from sqlalchemy import select
from unit.aggregator.simulated_run import tiny_dataset

from evalfleet.producer.create_run import create_run
from evalfleet.schema.db import make_engine, make_sessionmaker, session_scope, upsert
from evalfleet.schema.migrate import upgrade
from evalfleet.schema.models import ANSWER_KEY, Answer, CachedResponse, Result, Story
from evalfleet.schema.payloads import RunConfig

AWKWARD = 'He said "no" \\ then\nleft: café, 東京, 🙂'


def answer_row(run_id: int, story_id: int, turn: int, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "run_id": run_id,
        "model_label": "base",
        "story_id": story_id,
        "turn": turn,
        "sample": 0,
        "text": AWKWARD,
        "finish_reason": "stop",
        "prompt_tokens": 512,
        "completion_tokens": None,
        "latency_ms": 201.123456789,
        "attempts": 2,
        "cached": True,
        "error": None,
        "created_at": datetime(2026, 12, 7, 14, 1, 2, 345678, tzinfo=UTC),
    }
    return {**row, **values}


def test_rows_round_trip_and_a_repeated_key_changes_nothing(postgres_url: str) -> None:
    upgrade(postgres_url)
    sessions = make_sessionmaker(make_engine(postgres_url))
    stories = {"s1": ("wikipedia", "Story.", [("Who?", "Tom"), ("Where?", "Rome")])}
    run_id = create_run(sessions, tiny_dataset(stories), RunConfig(models={"base": "m"}))
    with session_scope(sessions) as session:
        story_id = session.scalars(select(Story.id).where(Story.run_id == run_id)).one()
        first = [answer_row(run_id, story_id, 1), answer_row(run_id, story_id, 2, text=None)]
        new = upsert(session, Answer.__table__, first, ANSWER_KEY, returning=["model_label"])
    assert [row.model_label for row in new] == ["base", "base"]
    with session_scope(sessions) as session:
        again = [answer_row(run_id, story_id, 1, text="changed")]
        assert upsert(session, Answer.__table__, again, ANSWER_KEY, returning=["turn"]) == []
        stored = session.scalars(select(Answer).order_by(Answer.turn)).all()
    assert stored[0].text == AWKWARD  # the first write stands
    assert stored[1].text is None
    columns = [c for c in first[0] if c != "text"]
    for row, answer in zip(first, stored, strict=True):
        assert {c: getattr(answer, c) for c in columns} == {c: row[c] for c in columns}


def test_a_left_out_column_gets_its_python_default(postgres_url: str) -> None:
    upgrade(postgres_url)
    sessions = make_sessionmaker(make_engine(postgres_url))
    before = datetime.now(UTC)
    with session_scope(sessions) as session:
        upsert(
            session, CachedResponse.__table__, [{"key": "k", "model": "m", "text": "t"}], ("key",)
        )
    with session_scope(sessions) as session:
        cached = session.get(CachedResponse, "k")
        assert cached is not None and cached.created_at >= before
        assert cached.finish_reason is None


def test_an_update_replaces_its_columns_and_a_value_json_cannot_carry_is_bound(
    postgres_url: str,
) -> None:
    upgrade(postgres_url)
    sessions = make_sessionmaker(make_engine(postgres_url))
    run_id = create_run(
        sessions, tiny_dataset({"s": ("news", "S.", [("Q?", "A")])}), RunConfig(models={"b": "m"})
    )
    key = ("run_id", "model_label", "domain")
    row = {"run_id": run_id, "model_label": "b", "domain": "news", "questions": 1}
    counts = {"answered": 1, "failed": 0, "scored": 1, "judge": None}
    with session_scope(sessions) as session:
        upsert(session, Result.__table__, [{**row, **counts, "em": 50.0, "f1": 60.0}], key)
        upsert(session, Result.__table__, [{**row, **counts, "em": 70.0, "f1": 80.0}], key, ("em",))
        updated = session.scalars(select(Result)).one()
        assert (updated.em, updated.f1) == (70.0, 60.0)
        later = {**row, **counts, "em": 100.0, "f1": math.nan}  # NaN is not JSON
        upsert(session, Result.__table__, [later], key, ("em", "f1"))
        session.expire_all()
        result = session.scalars(select(Result)).one()
    assert result.em == 100.0 and math.isnan(result.f1 or 0.0)
