"""Open what a command needs: the database (migrated or checked), the broker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, make_url
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.db import check_connection, make_engine, make_sessionmaker
from evalfleet.schema.errors import ConfigurationError
from evalfleet.schema.settings import Settings

if TYPE_CHECKING:
    from celery import Celery


def open_database(settings: Settings, migrate: bool = False) -> sessionmaker[Session]:
    """Sessions on the configured database; `migrate` first brings its schema up to date."""
    url = settings.effective_database_url
    if migrate:
        from evalfleet.schema.migrate import upgrade  # alembic: only for the commands that write

        upgrade(url)
    else:
        database = make_url(url).database
        if url.startswith("sqlite") and database and not Path(database).exists():
            raise ConfigurationError(
                f"no evalfleet database at {database}: no run was made here "
                "(set EVALFLEET_DATABASE_URL, or run from the folder of the run)"
            )
    engine = make_engine(url)
    check_connection(engine)
    if not inspect(engine).has_table("runs"):
        raise ConfigurationError(
            f"the database {engine.url.render_as_string(hide_password=True)} has no evalfleet "
            "schema: run `evalfleet db upgrade`"
        )
    return make_sessionmaker(engine)


def require_broker_url(settings: Settings, why: str) -> str:
    if not settings.broker_url:
        raise ConfigurationError(f"EVALFLEET_BROKER_URL is not set: {why}")
    return settings.broker_url


def open_broker(settings: Settings, broker_url: str) -> Celery:
    # Celery and kombu only for the commands that talk to the workers (not status or report).
    from evalfleet.producer.enqueue import check_broker
    from evalfleet.schema.queue import make_celery

    celery = make_celery(settings, broker_url)
    check_broker(celery)
    return celery
