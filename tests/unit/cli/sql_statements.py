"""The SQL a command sends, recorded through SQLAlchemy's engine events, and which of those
statements read answers row by row (docs/architecture.md, "Reports at scale"). Shared by the
status and report tests: `from unit.cli.sql_statements import ...`."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, event

_AGGREGATE = re.compile(r"\b(count|sum|max|min)\((DISTINCT )?[\w.*]*\)", re.IGNORECASE)


@contextlib.contextmanager
def recorded_statements() -> Iterator[list[str]]:
    """Every statement any engine of this process executes meanwhile."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def reads_answer_rows(statement: str) -> bool:
    """A SELECT returning answers' own columns one row per answer: not an aggregate, not
    grouped, not a bounded list (LIMIT)."""
    upper = statement.upper()
    if not upper.lstrip().startswith("SELECT") or "GROUP BY" in upper or " LIMIT " in upper:
        return False
    columns = statement.split("FROM", 1)[0]
    return "answers." in _AGGREGATE.sub("", columns)
