"""Run completion counted in SQL, and the atomic claim of its aggregation (DESIGN.md point 3)."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from schema.db import session_scope
from schema.models import OPEN_ITEM_STATES, Item, Run, RunState, utcnow


def open_item_count(session: Session, run_id: int) -> int:
    statement = select(func.count()).where(Item.run_id == run_id, Item.state.in_(OPEN_ITEM_STATES))
    return int(session.scalar(statement) or 0)


def claim_aggregation(sessions: sessionmaker[Session], run_id: int) -> bool:
    """True for exactly one caller, once no item of the run is open."""
    with session_scope(sessions) as session:
        if open_item_count(session, run_id):
            return False
        claimed = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.state == RunState.RUNNING.value)
            .values(state=RunState.AGGREGATING.value, updated_at=utcnow())
        )
        return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]
