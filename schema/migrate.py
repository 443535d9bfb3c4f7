"""Apply the Alembic migrations shipped in `schema/migrations` to a database URL."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from evalfleet.schema.db import check_connection, make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_lock = threading.Lock()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema; idempotent."""
    engine: Engine = make_engine(url)
    try:
        check_connection(engine)
        with _lock, engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
