"""Migration 0005 on a database holding rows, for SQLite (tests/unit/schema) and PostgreSQL
(tests/integration): shared so that both dialects are checked the same way."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from evalfleet.schema.db import make_engine
from evalfleet.schema.migrate import alembic_config, upgrade

ROWS = (
    "INSERT INTO runs (id, state, config, dataset_name, dataset_split, dataset_fingerprint, "
    "aggregations, created_at, updated_at) VALUES (1, 'done', '{}', 'd', 's', 'f', 1, "
    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO stories (id, run_id, key, position, source, text) VALUES (1, 1, 'k', 0, 'w', 't')",
    "INSERT INTO items (id, run_id, model_label, story_id, state, attempts, api_calls, "
    "rate_limited) VALUES (1, 1, 'base', 1, 'done', 1, 1, 0)",
    "INSERT INTO answers (id, run_id, model_label, story_id, turn, text, attempts, cached, "
    "created_at) VALUES (1, 1, 'base', 1, 1, 'an answer', 1, false, CURRENT_TIMESTAMP)",
)
SAMPLE_1 = (
    "INSERT INTO items (id, run_id, model_label, story_id, sample, state, attempts, api_calls, "
    "rate_limited) VALUES (2, 1, 'base', 1, 1, 'done', 1, 1, 0)",
    "INSERT INTO answers (id, run_id, model_label, story_id, turn, sample, text, attempts, "
    "cached, created_at) VALUES (2, 1, 'base', 1, 1, 1, 'another', 1, false, CURRENT_TIMESTAMP)",
)
DUPLICATE = (
    "INSERT INTO answers (id, run_id, model_label, story_id, turn, sample, text, attempts, "
    "cached, created_at) VALUES (3, 1, 'base', 1, 1, 1, 'twice', 1, false, CURRENT_TIMESTAMP)"
)


def check_samples_migration(url: str) -> None:
    """A database at 0004 with an item and an answer: after the upgrade both are kept as
    sample 0, a second sample of the same question is accepted, a duplicate sample is not,
    and the downgrade takes the column away again."""
    command.upgrade(alembic_config(url), "0004")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for statement in ROWS:
                connection.execute(text(statement))
        upgrade(url)
        with engine.begin() as connection:
            items = connection.execute(text("SELECT id, sample FROM items")).all()
            answers = connection.execute(text("SELECT text, sample FROM answers")).all()
            for statement in SAMPLE_1:
                connection.execute(text(statement))
        assert [tuple(r) for r in items] == [(1, 0)]
        assert [tuple(r) for r in answers] == [("an answer", 0)]
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text(DUPLICATE))
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM answers WHERE sample = 1"))
            connection.execute(text("DELETE FROM items WHERE sample = 1"))
        command.downgrade(alembic_config(url), "0004")
        with engine.begin() as connection:
            kept = connection.execute(text("SELECT text FROM answers")).scalars().all()
        assert kept == ["an answer"]
    finally:
        engine.dispose()
