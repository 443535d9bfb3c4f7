"""Engines, sessions and dialect-aware upserts (INSERT ... ON CONFLICT) for SQLite and PG."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Row, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.errors import ServiceUnavailableError
from evalfleet.schema.models import Base
from evalfleet.schema.pg_upsert import NotJsonable, json_upsert


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """An engine that survives server restarts (pre-ping) and SQLite's single-writer lock.
    `pool_size`: the connections kept open (the threads that write at once); 20 more may
    open for a burst."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=20)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (status, report) work while workers write; FKs are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def check_connection(engine: Engine) -> None:
    """Fail early with a clear message when the database does not answer."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise ServiceUnavailableError(
            f"cannot connect to the database {engine.url.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
        ) from exc


# Both dialects' inserts have the same ON CONFLICT interface.
DIALECT_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def upsert(
    session: Session | Connection,
    table: Any,
    rows: Sequence[dict[str, Any]],
    conflict_columns: Sequence[str],
    update_columns: Sequence[str] = (),
    returning: Sequence[str] = (),
) -> list[Row[Any]]:
    """Insert rows; on a conflict on `conflict_columns` update `update_columns`, or do nothing
    (no conflict columns: a plain insert). With `returning`, those columns of the rows written
    (without `update_columns`: the new ones)."""
    if not rows:
        return []
    bind = session.get_bind() if isinstance(session, Session) else session
    dialect = bind.dialect.name
    insert = DIALECT_INSERTS.get(dialect)
    if insert is None:  # pragma: no cover - only the two dialects above are supported
        raise ServiceUnavailableError(f"unsupported database dialect {dialect!r}")
    if dialect == "postgresql":
        try:
            return json_upsert(session, table, rows, conflict_columns, update_columns, returning)
        except NotJsonable:
            pass  # bound one by one below
    # Rows go as parameters, not in the statement, so SQLAlchemy compiles it once and caches.
    base = statement = insert(table)  # no conflict columns: a plain insert
    if conflict_columns and update_columns:
        statement = base.on_conflict_do_update(
            index_elements=list(conflict_columns),
            set_={c: base.excluded[c] for c in update_columns},
        )
    elif conflict_columns:
        statement = base.on_conflict_do_nothing(index_elements=list(conflict_columns))
    if not returning:
        session.execute(statement, list(rows))
        return []
    columns = [table.c[name] for name in returning]
    return list(session.execute(statement.returning(*columns), list(rows)))


def insert_rows(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """A plain multi-row INSERT (a conflict raises), by `upsert`'s path."""
    upsert(session, table, rows, ())


def create_all_for_tests(engine: Engine) -> None:
    """Unit tests only: the real path is `evalfleet db upgrade` (Alembic)."""
    Base.metadata.create_all(engine)
