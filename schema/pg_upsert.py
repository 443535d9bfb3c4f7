"""PostgreSQL's upsert with every row in one JSON parameter (docs/architecture.md, D2):
INSERT ... SELECT FROM json_populate_recordset(NULL::table, rows) ON CONFLICT.

A multi-row INSERT through SQLAlchemy binds, converts and reorders each value in Python:
0.06-0.12 ms of CPU per answer row, most of the group commit's cost in a worker. One JSON
text (json.dumps is C) costs 0.01-0.04 ms a row, and PostgreSQL parses it faster than the
same values bound one by one (bench/README.md, "Per answer").
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Connection, Row, Table, TextClause, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

_PREPARER = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]


class NotJsonable(ValueError):
    """A value JSON cannot carry exactly (NaN, bytes): the caller binds the rows instead."""


def json_upsert(
    session: Session | Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict_columns: Sequence[str],
    update_columns: Sequence[str],
    returning: Sequence[str],
) -> list[Row[Any]]:
    """`schema.db.upsert` on PostgreSQL; raises NotJsonable before touching the database."""
    columns = tuple(rows[0])
    missing = _python_defaults(table, columns)
    payload = [{**row, **{c.name: _value(c) for c in missing}} for row in rows] if missing else rows
    try:
        document = json.dumps(payload, default=_jsonable, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise NotJsonable(str(exc)) from exc
    statement = _statement(
        table,
        (*columns, *(c.name for c in missing)),
        tuple(conflict_columns),
        tuple(update_columns),
        tuple(returning),
    )
    result = session.execute(statement, {"rows": document})
    return list(result) if returning else []


def _jsonable(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


@functools.lru_cache(maxsize=64)
def _python_defaults(table: Table, given: tuple[str, ...]) -> tuple[Column[Any], ...]:
    """The columns the rows leave out that have a Python-side default: SQLAlchemy fills
    those in its own INSERT, the server knows nothing of them. Once per table and columns:
    the group commit calls this for every batch."""
    return tuple(c for c in table.columns if c.name not in given and c.default is not None)


def _value(column: Column[Any]) -> Any:
    default: Any = column.default
    # A callable default is wrapped by SQLAlchemy to take the execution context.
    return default.arg(None) if default.is_callable else default.arg


@functools.lru_cache(maxsize=64)
def _statement(
    table: Table,
    columns: tuple[str, ...],
    conflict: tuple[str, ...],
    update: tuple[str, ...],
    returning: tuple[str, ...],
) -> TextClause:
    name, quote = _PREPARER.format_table(table), _PREPARER.quote
    listed = ", ".join(quote(c) for c in columns)
    keys = ", ".join(quote(c) for c in conflict)
    sets = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in update)
    action = f"UPDATE SET {sets}" if update else "NOTHING"
    conflicts = f" ON CONFLICT ({keys}) DO {action}" if conflict else ""  # none: a plain insert
    back = " RETURNING " + ", ".join(quote(c) for c in returning) if returning else ""
    return text(
        f"INSERT INTO {name} ({listed}) SELECT {listed}"
        f" FROM json_populate_recordset(NULL::{name}, CAST(:rows AS json)){conflicts}{back}"
    )
