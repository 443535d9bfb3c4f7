"""Send the pending items (ids only): one message per item, short ones several to a message.
Safe to repeat: delivery is idempotent."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from evalfleet.schema.db import session_scope
from evalfleet.schema.errors import ServiceUnavailableError
from evalfleet.schema.lifecycle import mark_enqueued
from evalfleet.schema.models import Item, ItemState, Question, Story
from evalfleet.schema.payloads import ANSWER_ITEM_TASK, ANSWER_ITEMS_TASK
from evalfleet.schema.settings import Settings
from evalfleet.schema.task_labels import answer_item_label, answer_items_label

logger = logging.getLogger(__name__)
# At most this many items to a message, however short (group_items).
MAX_ITEMS_PER_MESSAGE = 8


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
    celery: Celery,
    sessions: sessionmaker[Session],
    run_id: int,
    only_unsent: bool = True,
    questions_per_message: int = Settings.model_fields["questions_per_message"].default,
) -> int:
    """Send every pending item of the run (only those never sent, unless told otherwise),
    short ones several to a message (group_items, `EVALFLEET_QUESTIONS_PER_MESSAGE`);
    returns the items sent."""
    with session_scope(sessions) as session:
        # Each item's model, questions and story key (for the label Flower shows), in one go.
        query = (
            select(Item.id, Item.model_label, func.count(Question.id), Story.key)
            .join(Story, Story.id == Item.story_id)
            .outerjoin(Question, Question.story_id == Item.story_id)
            .where(Item.run_id == run_id, Item.state == ItemState.PENDING.value)
            .group_by(Item.id, Item.model_label, Story.key)
        )
        if only_unsent:
            query = query.where(Item.enqueued_at.is_(None))
        rows = session.execute(query.order_by(Item.id)).all()
    items = [(item_id, label, count) for item_id, label, count, _ in rows]
    labels = {  # what Flower shows for each task
        item_id: answer_item_label(run_id, label, key, item_id) for item_id, label, _, key in rows
    }
    sent: list[int] = []
    try:
        with celery.producer_or_acquire() as producer:
            for group in group_items(items, questions_per_message):
                if len(group) == 1:
                    celery.send_task(
                        ANSWER_ITEM_TASK, args=group, producer=producer, argsrepr=labels[group[0]]
                    )
                else:
                    label = answer_items_label(labels[item_id] for item_id in group)
                    celery.send_task(
                        ANSWER_ITEMS_TASK, args=[group], producer=producer, argsrepr=label
                    )
                sent.extend(group)
    except BrokerError as exc:
        raise ServiceUnavailableError(
            f"run {run_id}: the broker failed after {len(sent)} of {len(items)} items "
            f"({exc}); the rest stay pending: `evalfleet reconcile {run_id}` sends them"
        ) from exc
    finally:
        with session_scope(sessions) as session:
            mark_enqueued(session, sent)
    logger.info("run %s: %s items enqueued", run_id, len(sent))
    return len(sent)


def group_items(
    items: Sequence[tuple[int, str, int]], questions_per_message: int
) -> Iterator[list[int]]:
    """(item id, model label, questions) in send order as the messages' item ids: one
    model's consecutive items together until they hold `questions_per_message` questions
    (at most MAX_ITEMS_PER_MESSAGE items), so a 5-question SQuAD paragraph shares its
    message, ack and task trace with two others, as a 15-turn CoQA story has one to itself
    (bench/short_items.py). A message holds one model's items, and the models' messages
    alternate as their items did: a message's items are answered one after the other, and
    a model whose items all waited behind the other's would leave its rate limit unused.
    1 or less: one item per message."""
    open_groups: dict[str, tuple[list[int], int]] = {}  # model label -> (ids, questions)
    for item_id, label, count in items:
        group, questions = open_groups.pop(label, ([], 0))
        group.append(item_id)
        questions += count
        if questions >= questions_per_message or len(group) >= MAX_ITEMS_PER_MESSAGE:
            yield group
        else:
            open_groups[label] = (group, questions)
    for group, _ in open_groups.values():
        yield group
