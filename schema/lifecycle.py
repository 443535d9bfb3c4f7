"""Every state change of items and runs, in one place (docs/architecture.md, "State machine").

Items (one model over one story)::

             mark_enqueued (message sent; state unchanged)
                 │
    ┌──────▶ pending ──claim_item──▶ running ──close_items(DONE)────▶ done
    │          ▲                      │  ▲ │
    │          └─────hand_back────────┘  │ └─close_items(FAILED)────▶ failed
    │                     renew_lease ───┘        (budget spent, poison message,
    │                     (a live holder)          run stopped, retries exhausted;
    │                                              fail_model: every open item of
    │                                              a model the API does not know)
    └──────────────── reset_for_retry ◀─── failed, or done with failed turns

    pending ──hold_for_batch──▶ batched ──close_items(DONE / FAILED)──▶ done / failed
                                (batch mode: its questions wait in provider batches)

Batches (batch mode, docs/architecture.md, D10)::

    record_batch ──▶ submitting ──mark_submitted──▶ submitted ──finish_batch──▶ done / failed
    (before upload)   note_input_file                take_poll (one live poller per batch)

Runs::

    running ──claim_aggregation──▶ aggregating ──claim_results──▶ done
       │   (no open item left)                 (results written)
       └──stop_run──▶ failed   (401/403: a configuration error)
    failed / done ──reset_for_retry──▶ running

Every transition is one conditional UPDATE whose WHERE names the states it leaves, so two
processes racing on the same row cannot both make it (SQLite and PostgreSQL agree), and a
redelivered message finds the row already moved and changes nothing. Callers pass their own
session, so a transition commits with the caller's other writes (an item closes in the
same transaction as its last answers); only the aggregation claim takes its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, true, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from evalfleet.schema.db import session_scope, upsert
from evalfleet.schema.models import (
    OPEN_BATCH_STATES,
    OPEN_ITEM_STATES,
    Batch,
    BatchState,
    Item,
    ItemState,
    Run,
    RunState,
    utcnow,
)

_IN_CHUNKS = 500  # ids per IN (...) list: SQLite caps the parameters of one statement
_NO_ORM_SYNC = {"synchronize_session": False}  # no Item or Run object is loaded by callers
# What a synchronous delivery may hand back: a batched item is the batch poller's.
_DELIVERY_STATES = (ItemState.PENDING.value, ItemState.RUNNING.value)


@dataclass(frozen=True)
class Claim:
    """A delivery's hold on an item: how many deliveries it has had, and why the last ended."""

    attempts: int
    last_error: str | None


# --- items -------------------------------------------------------------------------------


def mark_enqueued(session: Session, item_ids: Sequence[int], now: datetime | None = None) -> None:
    """Record that a message naming each item was sent (the state stays as it is)."""
    moment = now or utcnow()
    for start in range(0, len(item_ids), _IN_CHUNKS):
        chunk = item_ids[start : start + _IN_CHUNKS]
        session.execute(update(Item).where(Item.id.in_(chunk)).values(enqueued_at=moment))


def claim_item(
    session: Session, item_id: int, lease_s: float, takeover: bool, now: datetime
) -> Claim | None:
    """pending → running, or running → running when the holder's lease is over (or
    `takeover`: this delivery is the retry of the one holding it). Counts the delivery.
    None: the item is closed, or a live delivery holds it."""
    lease_over = or_(Item.lease_until.is_(None), Item.lease_until < now)
    claimed = session.execute(
        update(Item)
        .where(
            Item.id == item_id,
            or_(
                Item.state == ItemState.PENDING.value,
                and_(Item.state == ItemState.RUNNING.value, true() if takeover else lease_over),
            ),
        )
        .values(
            state=ItemState.RUNNING.value,
            attempts=Item.attempts + 1,
            lease_until=now + timedelta(seconds=lease_s),
            started_at=func.coalesce(Item.started_at, now),
        )
        .returning(Item.attempts, Item.last_error)
        .execution_options(**_NO_ORM_SYNC)
    ).one_or_none()
    return None if claimed is None else Claim(claimed.attempts, claimed.last_error)


def renew_lease(session: Session, item_id: int, lease_s: float) -> None:
    """running → running with a later lease: the holder is alive."""
    session.execute(
        update(Item)
        .where(Item.id == item_id, Item.state == ItemState.RUNNING.value)
        .values(lease_until=utcnow() + timedelta(seconds=lease_s))
    )


def hand_back(session: Session, item_id: int, reason: str) -> None:
    """running → pending, keeping why, until the task's retry arrives."""
    session.execute(
        update(Item)
        .where(Item.id == item_id, Item.state.in_(_DELIVERY_STATES))
        .values(state=ItemState.PENDING.value, last_error=reason, lease_until=None)
    )


def close_items(
    session: Session,
    which: ColumnElement[bool],
    state: ItemState,
    error: str | None,
    calls: int = 0,
    rate_limited: int = 0,
) -> None:
    """pending/running → done or failed for the items `which` selects (a closed item keeps
    its outcome), adding the API calls of the delivery that closes them."""
    session.execute(
        update(Item)
        .where(which, Item.state.in_(OPEN_ITEM_STATES))
        .values(
            state=state.value,
            last_error=error,
            finished_at=utcnow(),
            lease_until=None,
            **_call_counts(calls, rate_limited),
        )
        .execution_options(**_NO_ORM_SYNC)
    )


def close_item(session: Session, item_id: int, state: ItemState, error: str | None) -> None:
    close_items(session, Item.id == item_id, state, error)


def fail_model(session: Session, run_id: int, label: str, reason: str) -> None:
    """pending/running → failed for every open item of one model of a run (an unknown model:
    the other models go on)."""
    close_items(
        session, and_(Item.run_id == run_id, Item.model_label == label), ItemState.FAILED, reason
    )


def record_calls(session: Session, item_id: int, calls: int, rate_limited: int) -> None:
    """Add API calls to an item without changing its state (a delivery that ends open)."""
    values = _call_counts(calls, rate_limited)
    if values:
        session.execute(update(Item).where(Item.id == item_id).values(**values))


def _call_counts(calls: int, rate_limited: int) -> dict[str, Any]:
    if not calls and not rate_limited:
        return {}
    return {
        "api_calls": Item.api_calls + calls,
        "rate_limited": Item.rate_limited + rate_limited,
    }


def reset_for_retry(session: Session, run_id: int, item_ids: Sequence[int]) -> None:
    """failed (or done with failed turns) → pending, as never sent; the run → running."""
    for start in range(0, len(item_ids), _IN_CHUNKS):
        session.execute(
            update(Item)
            .where(Item.id.in_(item_ids[start : start + _IN_CHUNKS]))
            .values(
                state=ItemState.PENDING.value, attempts=0, last_error=None,
                enqueued_at=None, finished_at=None, lease_until=None,
            )
        )  # fmt: skip
    session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(state=RunState.RUNNING.value, error=None, finished_at=None)
    )


def hold_for_batch(session: Session, item_ids: Sequence[int]) -> None:
    """pending → batched: the item's open questions are in provider batches (batch mode);
    no synchronous delivery or sweep touches it, the batch poller closes it."""
    for start in range(0, len(item_ids), _IN_CHUNKS):
        session.execute(
            update(Item)
            .where(
                Item.id.in_(item_ids[start : start + _IN_CHUNKS]),
                Item.state == ItemState.PENDING.value,
            )
            .values(
                state=ItemState.BATCHED.value, started_at=func.coalesce(Item.started_at, utcnow())
            )
            .execution_options(**_NO_ORM_SYNC)
        )


# --- batches -----------------------------------------------------------------------------


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


# --- runs --------------------------------------------------------------------------------


def stop_run(session: Session, run_id: int, reason: str) -> None:
    """running → failed, once, with one clear message; its open items fail with it."""
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.state == RunState.RUNNING.value)
        .values(state=RunState.FAILED.value, error=reason, finished_at=utcnow())
    )
    close_items(session, Item.run_id == run_id, ItemState.FAILED, reason)


def claim_aggregation(sessions: sessionmaker[Session], run_id: int) -> bool:
    """running → aggregating, true for exactly one caller, once no item of the run is open.
    One statement in a transaction of its own, run after the caller's own item was committed
    closed: of items closing at once, the last to commit sees them all closed; a concurrent
    claim waits on the run row's lock, then finds the state changed and changes nothing."""
    open_items = select(Item.id).where(Item.run_id == run_id, Item.state.in_(OPEN_ITEM_STATES))
    with session_scope(sessions) as session:
        claimed = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.state == RunState.RUNNING.value, ~open_items.exists())
            .values(state=RunState.AGGREGATING.value, updated_at=utcnow())
            .execution_options(**_NO_ORM_SYNC)
        )
        return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def claim_results(session: Session, run_id: int) -> bool:
    """aggregating → done, counting the aggregation; true for exactly one caller. It comes
    before the results are written: it takes the row's write lock, so a second delivery of
    the aggregation waits, then finds the run done and changes nothing."""
    now = utcnow()
    claimed = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.state == RunState.AGGREGATING.value)
        .values(
            state=RunState.DONE.value,
            aggregations=Run.aggregations + 1,
            finished_at=now,
            updated_at=now,
        )
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]
