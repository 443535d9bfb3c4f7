"""Every state change of items and runs, in one place (docs/architecture.md, "State machine").

Items (one model over one story, one sample of it)::

             mark_enqueued (message sent; state unchanged)
                 │
    ┌──────▶ pending ──claim_item──▶ running ──close_each, close_items(DONE)──▶ done
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
same transaction as its last answers: close_each); only the aggregation claim takes its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, or_, select, true, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from evalfleet.schema import batch_lifecycle
from evalfleet.schema.db import session_scope
from evalfleet.schema.models import (
    OPEN_ITEM_STATES,
    Item,
    ItemState,
    Run,
    RunState,
    utcnow,
)

# Batch rows' transitions live beside (schema/batch_lifecycle.py) and are part of this API.
record_batch = batch_lifecycle.record_batch
note_input_file = batch_lifecycle.note_input_file
mark_submitted = batch_lifecycle.mark_submitted
take_poll = batch_lifecycle.take_poll
note_progress = batch_lifecycle.note_progress
finish_batch = batch_lifecycle.finish_batch

_IN_CHUNKS = 500  # ids per IN (...) list: SQLite caps the parameters of one statement
# The statements a delivery runs once per item are built once, on the Core tables: building
# and keying an ORM statement per call was most of a short item's CPU in the worker
# (bench/per_item.py). Their parameters are bound per call.
_ITEMS = cast(Table, Item.__table__)
_RUNS = cast(Table, Run.__table__)
_NO_ORM_SYNC = {"synchronize_session": False}  # no Item or Run object is loaded by callers
# What a synchronous delivery may hand back: a batched item is the batch poller's.
_DELIVERY_STATES = (ItemState.PENDING.value, ItemState.RUNNING.value)


@dataclass(frozen=True)
class Claim:
    """A delivery's hold on an item: how many deliveries it has had, why the last ended, and
    what the delivery reads next."""

    attempts: int
    last_error: str | None
    run_id: int
    model_label: str
    story_id: int
    sample: int


@dataclass(frozen=True)
class ItemClose:
    """One item to close done with its last answers, and the API calls of its delivery."""

    item_id: int
    run_id: int
    calls: int = 0
    rate_limited: int = 0


# --- items -------------------------------------------------------------------------------


def mark_enqueued(session: Session, item_ids: Sequence[int], now: datetime | None = None) -> None:
    """Record that a message naming each item was sent (the state stays as it is). Rows are
    locked in id order, as close_each and renew_lease take them: a group commit closing
    several items meanwhile cannot deadlock with it (a plain UPDATE locks in the table's
    physical order)."""
    _update_in_id_order(session, item_ids, {"enqueued_at": now or utcnow()})


def _update_in_id_order(
    session: Session, item_ids: Sequence[int], values: dict[str, Any], *where: Any
) -> None:
    """UPDATE the items (those of `where`) in chunks, locking their rows in id order first:
    two transactions that lock overlapping items this way never deadlock."""
    ordered = sorted(item_ids)
    for start in range(0, len(ordered), _IN_CHUNKS):
        locked = (
            select(Item.id)
            .where(Item.id.in_(ordered[start : start + _IN_CHUNKS]), *where)
            .order_by(Item.id)
            .with_for_update()
        )
        session.execute(
            update(Item)
            .where(Item.id.in_(locked.scalar_subquery()))
            .values(**values)
            .execution_options(**_NO_ORM_SYNC)
        )


def _claim_statement(takeover: bool) -> Any:
    items = _ITEMS.c
    lease_over = or_(items.lease_until.is_(None), items.lease_until < bindparam("now"))
    run_running = (
        select(_RUNS.c.id)
        .where(_RUNS.c.id == items.run_id, _RUNS.c.state == RunState.RUNNING.value)
        .exists()
    )
    return (
        update(_ITEMS)
        .where(
            items.id == bindparam("item_id"),
            or_(
                items.state == ItemState.PENDING.value,
                and_(items.state == ItemState.RUNNING.value, true() if takeover else lease_over),
            ),
            run_running,
        )
        .values(
            state=ItemState.RUNNING.value,
            attempts=items.attempts + 1,
            lease_until=bindparam("lease_until", type_=items.lease_until.type),
            started_at=func.coalesce(
                items.started_at, bindparam("now", type_=items.started_at.type)
            ),
        )
        .returning(
            items.attempts,
            items.last_error,
            items.run_id,
            items.model_label,
            items.story_id,
            items.sample,
        )
    )


_CLAIMS = {takeover: _claim_statement(takeover) for takeover in (False, True)}


def claim_item(
    session: Session, item_id: int, lease_s: float, takeover: bool, now: datetime
) -> Claim | None:
    """pending → running, or running → running when the holder's lease is over (or
    `takeover`: this delivery is the retry of the one holding it), while its run is running.
    Counts the delivery. None: the item is closed, a live delivery holds it, or the run is
    not running (the caller reads which)."""
    claimed = session.execute(
        _CLAIMS[takeover],
        {"item_id": item_id, "now": now, "lease_until": now + timedelta(seconds=lease_s)},
    ).one_or_none()
    return None if claimed is None else Claim(*claimed)


def renew_lease(session: Session, item_ids: Sequence[int], lease_s: float) -> None:
    """running → running with a later lease, for every item a live process holds, in one
    statement. Rows are locked in id order, the order close_each takes them in, so a renewal
    and a group commit of the same process cannot deadlock."""
    until = utcnow() + timedelta(seconds=lease_s)
    running = Item.state == ItemState.RUNNING.value
    _update_in_id_order(session, item_ids, {"lease_until": until}, running)


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


_CLOSE_EACH = (  # Core, not ORM: an executemany with its own WHERE
    update(_ITEMS)
    .where(
        _ITEMS.c.id == bindparam("close_id"),
        # OR, not IN: an IN list expands per call, which executemany cannot do
        or_(*(_ITEMS.c.state == state for state in OPEN_ITEM_STATES)),
    )
    .values(
        state=ItemState.DONE.value,
        last_error=None,
        finished_at=bindparam("close_at", type_=_ITEMS.c.finished_at.type),
        lease_until=None,
        api_calls=_ITEMS.c.api_calls + bindparam("add_calls"),
        rate_limited=_ITEMS.c.rate_limited + bindparam("add_limited"),
    )
)


def close_each(session: Session, closes: Sequence[ItemClose]) -> set[int]:
    """pending/running → done for each item, each adding its own API calls: one statement
    (executemany) in the transaction of the items' last answers (workers/group_commit.py),
    in id order. Returns the runs for which this close may be the last: the caller claims
    the aggregation only for those (docs/architecture.md, D3). For every other run this
    transaction holds the row lock of one of its open items (`_hold_an_open_item`): that
    item's close waits for this commit, so its closer, or the last in that chain, sees this
    close committed."""
    if not closes:
        return set()
    now = utcnow()
    params = [
        {
            "close_id": c.item_id,
            "close_at": now,
            "add_calls": c.calls,
            "add_limited": c.rate_limited,
        }
        for c in sorted(closes, key=lambda c: c.item_id)
    ]
    session.execute(_CLOSE_EACH, params)
    return {
        run for run in sorted({c.run_id for c in closes}) if not _hold_an_open_item(session, run)
    }


_OPEN_ITEM_TO_HOLD = (
    select(_ITEMS.c.id)
    .where(_ITEMS.c.run_id == bindparam("run_id"), _ITEMS.c.state.in_(OPEN_ITEM_STATES))
    .limit(1)
    .with_for_update(skip_locked=True)
)


def _hold_an_open_item(session: Session, run_id: int) -> bool:
    """Lock one open item of the run that no other transaction holds (SKIP LOCKED: never
    waits, so no deadlock). SQLite has one writer at a time: it ignores the lock, and no
    other close can commit between this read and this transaction's commit."""
    held = session.execute(_OPEN_ITEM_TO_HOLD, {"run_id": run_id}).first()
    return held is not None


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
