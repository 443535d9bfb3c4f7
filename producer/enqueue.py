"""Send one message per pending item (ids only). Safe to repeat: delivery is idempotent."""

from __future__ import annotations

import logging

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.db import session_scope
from evalfleet.schema.errors import ServiceUnavailableError
from evalfleet.schema.lifecycle import mark_enqueued
from evalfleet.schema.models import Item, ItemState
from evalfleet.schema.payloads import ANSWER_ITEM_TASK
from evalfleet.schema.task_labels import answer_item_labels

logger = logging.getLogger(__name__)


def check_broker(celery: Celery) -> None:
    """Fail before anything is written when the broker does not answer."""
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
    except Exception as exc:  # kombu raises several types for the same "cannot connect"
        raise ServiceUnavailableError(
            f"cannot connect to the broker {celery.conf.broker_url!r}: {exc}"
        ) from exc


def enqueue_pending(
    celery: Celery, sessions: sessionmaker[Session], run_id: int, only_unsent: bool = True
) -> int:
    """Send every pending item of the run (only those never sent, unless told otherwise)."""
    with session_scope(sessions) as session:
        query = select(Item.id).where(Item.run_id == run_id, Item.state == ItemState.PENDING.value)
        if only_unsent:
            query = query.where(Item.enqueued_at.is_(None))
        item_ids = list(session.scalars(query.order_by(Item.id)))
        labels = answer_item_labels(session, run_id)  # what Flower shows for each task
    sent: list[int] = []
    try:
        with celery.producer_or_acquire() as producer:
            for item_id in item_ids:
                celery.send_task(
                    ANSWER_ITEM_TASK, args=[item_id], producer=producer, argsrepr=labels[item_id]
                )
                sent.append(item_id)
    except BrokerError as exc:
        raise ServiceUnavailableError(
            f"run {run_id}: the broker failed after {len(sent)} of {len(item_ids)} messages "
            f"({exc}); the rest stay pending: `evalfleet reconcile {run_id}` sends them"
        ) from exc
    finally:
        with session_scope(sessions) as session:
            mark_enqueued(session, sent)
    logger.info("run %s: %s items enqueued", run_id, len(sent))
    return len(sent)
