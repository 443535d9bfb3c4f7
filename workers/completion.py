"""Run completion counted in SQL, and the atomic claim of its aggregation (DESIGN.md point 3)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.db import session_scope
from evalfleet.schema.models import OPEN_ITEM_STATES, Item, Run, RunState, utcnow


def claim_aggregation(sessions: sessionmaker[Session], run_id: int) -> bool:
    """True for exactly one caller, once no item of the run is open. One statement, run after
    the caller's own item was committed closed: of items closing at once, the last to commit
    sees them all closed; a concurrent claim waits on the run row's lock, then finds the
    state changed and changes nothing."""
    open_items = select(Item.id).where(Item.run_id == run_id, Item.state.in_(OPEN_ITEM_STATES))
    with session_scope(sessions) as session:
        claimed = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.state == RunState.RUNNING.value, ~open_items.exists())
            .values(state=RunState.AGGREGATING.value, updated_at=utcnow())
            .execution_options(synchronize_session=False)  # no Run object is loaded here
        )
        return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]
