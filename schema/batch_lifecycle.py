"""The states of batch rows in batch mode (docs/architecture.md, D10), drawn with the items'
and runs' in schema/lifecycle.py, which re-exports these: callers use that module only.
Each transition is one conditional UPDATE naming the states it leaves, as there."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from evalfleet.schema.db import upsert
from evalfleet.schema.models import OPEN_BATCH_STATES, Batch, BatchState, utcnow

_NO_ORM_SYNC = {"synchronize_session": False}  # no Batch object is loaded by callers


def record_batch(
    session: Session, run_id: int, label: str, key: str, round_: int, custom_ids: list[str]
) -> int:
    """A batch row in `submitting`, before anything is uploaded; recording it again (a
    resumed submitter) keeps the first row. Returns its id."""
    row = {
        "run_id": run_id, "model_label": label, "key": key, "round": round_,
        "state": BatchState.SUBMITTING.value, "custom_ids": custom_ids, "progress": 0.0,
        "answered": 0, "failed": 0, "created_at": utcnow(),
    }  # fmt: skip
    upsert(session, Batch.__table__, [row], ("run_id", "model_label", "key"))
    return int(
        session.execute(
            select(Batch.id).where(
                Batch.run_id == run_id, Batch.model_label == label, Batch.key == key
            )
        ).scalar_one()
    )


def note_input_file(session: Session, batch_id: int, file_id: str) -> None:
    """submitting → submitting, with the uploaded file: a resumed submitter reuses it."""
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.state == BatchState.SUBMITTING.value)
        .values(input_file_id=file_id)
    )


def mark_submitted(session: Session, batch_id: int, provider_id: str, status: str | None) -> None:
    """submitting → submitted: the provider has the batch."""
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.state == BatchState.SUBMITTING.value)
        .values(state=BatchState.SUBMITTED.value, provider_id=provider_id, provider_status=status)
    )


def take_poll(session: Session, batch_id: int, token: str, lease_s: float, now: datetime) -> bool:
    """Hold (or renew) the right to poll an open batch: true for the chain whose `token` holds
    it or finds its lease over; a second chain (a sweep's re-send) ends on false."""
    taken = session.execute(
        update(Batch)
        .where(
            Batch.id == batch_id,
            Batch.state.in_(OPEN_BATCH_STATES),
            or_(
                Batch.poller == token,
                Batch.poll_lease_until.is_(None),
                Batch.poll_lease_until < now,
            ),
        )
        .values(poller=token, poll_lease_until=now + timedelta(seconds=lease_s))
        .execution_options(**_NO_ORM_SYNC)
    )
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def note_progress(session: Session, batch_id: int, status: str | None, progress: float) -> None:
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.state.in_(OPEN_BATCH_STATES))
        .values(provider_status=status, progress=progress)
    )


def finish_batch(
    session: Session,
    batch_id: int,
    state: BatchState,
    status: str | None,
    answered: int,
    failed: int,
    error: str | None,
) -> bool:
    """open → done or failed, true for exactly one caller: the poller that stores the batch's
    answers does so in the same transaction, so they are stored once (D2, D10)."""
    finished = session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.state.in_(OPEN_BATCH_STATES))
        .values(
            state=state.value,
            provider_status=status,
            answered=answered,
            failed=failed,
            error=error,
            finished_at=utcnow(),
            poll_lease_until=None,
            progress=100.0 if state is BatchState.DONE else Batch.progress,
        )  # fmt: skip
        .execution_options(**_NO_ORM_SYNC)
    )
    return bool(finished.rowcount == 1)  # type: ignore[attr-defined]
