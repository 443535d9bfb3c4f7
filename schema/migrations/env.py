"""Alembic environment: the URL comes from the caller (`evalfleet db upgrade`), never a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from evalfleet.schema.db import make_engine
from evalfleet.schema.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    )
    with context.begin_transaction():
        context.run_migrations()


existing = config.attributes.get("connection")
if existing is not None:
    run_migrations(existing)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        run_migrations(conn)
    engine.dispose()
