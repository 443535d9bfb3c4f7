"""Give failed work another chance: failed items, and questions whose answer is an error."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.db import session_scope
from evalfleet.schema.errors import RunNotFoundError
from evalfleet.schema.lifecycle import reset_for_retry
from evalfleet.schema.models import Answer, Item, ItemState, Run


def reset_failed(sessions: sessionmaker[Session], run_id: int) -> int:
    """Set every item with something failed back to pending (the answers it has are kept, so
    only what failed is asked again) and reopen the run; returns the items reset."""
    with session_scope(sessions) as session:
        if session.get(Run, run_id) is None:
            raise RunNotFoundError(f"no run with id {run_id}")
        failed_turns = select(Answer.model_label, Answer.story_id, Answer.sample).where(
            Answer.run_id == run_id, Answer.error.is_not(None)
        )
        with_failed_turns = {tuple(row) for row in session.execute(failed_turns)}
        session.execute(delete(Answer).where(Answer.run_id == run_id, Answer.error.is_not(None)))
        items = session.scalars(select(Item).where(Item.run_id == run_id)).all()
        reset = [
            i.id
            for i in items
            if i.state == ItemState.FAILED.value
            or (i.model_label, i.story_id, i.sample) in with_failed_turns
        ]
        if not reset:
            return 0
        reset_for_retry(session, run_id, reset)
        return len(reset)
