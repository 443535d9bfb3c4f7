"""Open what a command needs: settings, the database (migrated), the broker."""

from __future__ import annotations

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from producer.enqueue import check_broker
from schema.db import check_connection, make_engine, make_sessionmaker
from schema.migrate import upgrade
from schema.queue import make_celery
from schema.settings import Settings


def open_database(settings: Settings, migrate: bool = False) -> sessionmaker[Session]:
    """Sessions on the configured database; `migrate` first brings its schema up to date."""
    url = settings.effective_database_url
    if migrate:
        upgrade(url)
    engine = make_engine(url)
    check_connection(engine)
    return make_sessionmaker(engine)


def open_broker(settings: Settings, broker_url: str) -> Celery:
    celery = make_celery(settings, broker_url)
    check_broker(celery)
    return celery
