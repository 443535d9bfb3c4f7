"""Re-send what Redis lost (docs/architecture.md, D1): every open item that no worker holds, no
queued message names and no live lease covers is sent again; a lost aggregation is re-sent."""

from __future__ import annotations

import ast
import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.db import session_scope
from evalfleet.schema.lifecycle import claim_aggregation, mark_enqueued
from evalfleet.schema.models import OPEN_ITEM_STATES, Item, ItemState, Run, RunState, as_utc, utcnow
from evalfleet.schema.payloads import (
    AGGREGATE_RUN_TASK,
    ANSWER_ITEM_TASK,
    ANSWER_ITEMS_TASK,
    ANSWER_TASKS,
)
from evalfleet.schema.task_labels import aggregate_run_label, answer_item_labels
from evalfleet.workers.batch.recover import resend_lost_polls

logger = logging.getLogger(__name__)
INSPECT_TIMEOUT_S = 1.0
AGGREGATION_GRACE_S = 60.0  # an aggregation claimed longer ago than this was lost


@dataclass(frozen=True)
class Reconciled:
    run_id: int
    open_items: int
    in_flight: int
    resent: int
    aggregation_sent: bool


def _item_ids(task: str | None, args: Any) -> list[int]:
    """The item ids a message of `task` carries: answer_item's first argument, or the list
    that is answer_items' (none for any other task)."""
    if task not in ANSWER_TASKS:
        return []
    if isinstance(args, str):  # some Celery versions report args as their repr
        try:
            args = ast.literal_eval(args)
        except (ValueError, SyntaxError):  # a display label (argsrepr), not the arguments
            return []
    first = args[0] if isinstance(args, list | tuple) and args else None
    ids = first if task == ANSWER_ITEMS_TASK and isinstance(first, list | tuple) else [first]
    return [int(item_id) for item_id in ids if isinstance(item_id, int)]


def held_by_workers(celery: Celery) -> set[int] | None:
    """Item ids in workers' hands (running, prefetched, waiting on a retry countdown);
    None when the workers could not be asked."""
    try:
        inspector = celery.control.inspect(timeout=INSPECT_TIMEOUT_S)
        replies = [inspector.scheduled(), inspector.reserved(), inspector.active()]
    except Exception as exc:  # noqa: BLE001 - the broker itself may be down
        logger.warning("cannot ask the workers what they hold: %s", exc)
        return None
    held: set[int] = set()
    for reply in replies:
        for tasks in (reply or {}).values():
            for task in tasks:
                request = task.get("request", task)
                held.update(_item_ids(request.get("name"), request.get("args")))
    return held


def queued_in_redis(celery: Celery, queue: str) -> set[int]:
    """Item ids of messages waiting in the queue (kombu's Redis transport keeps a list)."""
    queued: set[int] = set()
    with celery.connection_for_read() as connection:
        client = connection.default_channel.client
        for raw in client.lrange(queue, 0, -1):
            message = json.loads(raw)
            task = message.get("headers", {}).get("task")
            if task not in ANSWER_TASKS:
                continue
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            queued.update(_item_ids(task, json.loads(body)[0]))
    return queued


def reconcile_run(
    celery: Celery, sessions: sessionmaker[Session], run_id: int, queue: str
) -> Reconciled:
    with sessions() as session:
        open_items = list(
            session.scalars(
                select(Item).where(Item.run_id == run_id, Item.state.in_(OPEN_ITEM_STATES))
            )
        )
    open_ids = [item.id for item in open_items]
    now = utcnow()
    # Ask in the order a message travels (queue, then scheduled, reserved, active), so one
    # moving on while we ask is seen twice rather than not at all.
    queued = queued_in_redis(celery, queue) if open_ids else set()
    held = (held_by_workers(celery) or set()) if open_ids else set()
    in_flight = queued | held
    # A running item whose lease is alive has a live holder (a heartbeat renews it while
    # the delivery works); only pending items no one holds, and items whose holder stopped
    # renewing, are lost (a batched item is its batch poller's, D10). Resending one that was
    # not lost is harmless: the lease makes the second delivery wait instead of paying again.
    lost = [
        item.id
        for item in open_items
        if item.id not in in_flight
        and (
            item.state == ItemState.PENDING.value
            or (item.state == ItemState.RUNNING.value and lease_expired(item.lease_until, now))
        )
    ]
    if lost:
        with session_scope(sessions) as session:
            mark_enqueued(session, lost, now)
            labels = answer_item_labels(session, run_id)  # what Flower shows for each task
        for item_id in lost:
            celery.send_task(ANSWER_ITEM_TASK, args=[item_id], argsrepr=labels[item_id])
        logger.warning("run %s: re-sent %s lost items", run_id, len(lost))
    resend_lost_polls(celery, sessions, run_id)  # batch mode: its batches' pollers (D10)
    aggregation_sent = not open_ids and recover_aggregation(celery, sessions, run_id)
    return Reconciled(run_id, len(open_ids), len(in_flight & set(open_ids)), len(lost),
                      aggregation_sent)  # fmt: skip


def recover_aggregation(celery: Celery, sessions: sessionmaker[Session], run_id: int) -> bool:
    """Send the run's aggregation if every item ended but no worker claimed it (a crash
    between its commit and its enqueue), or if a claimed one was lost on its way (the
    aggregator is idempotent). True when sent."""
    with sessions() as session:
        run = session.get_one(Run, run_id)
        state, since_update = run.state, (utcnow() - as_utc(run.updated_at)).total_seconds()
    lost = state == RunState.AGGREGATING.value and since_update > AGGREGATION_GRACE_S
    if lost or (state == RunState.RUNNING.value and claim_aggregation(sessions, run_id)):
        celery.send_task(AGGREGATE_RUN_TASK, args=[run_id], argsrepr=aggregate_run_label(run_id))
        return True
    return False


def lease_expired(lease_until: datetime | None, now: datetime) -> bool:
    return lease_until is None or as_utc(lease_until) < now


def active_run_ids(sessions: sessionmaker[Session]) -> list[int]:
    with sessions() as session:
        states = (RunState.RUNNING.value, RunState.AGGREGATING.value)
        return list(session.scalars(select(Run.id).where(Run.state.in_(states))))
