"""The tasks: answer one item, or several short ones; aggregate one run."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError

# Loaded with the worker, not by its first aggregation (aggregate_run imports it then): its
# imports were 0.11 s of the end of a run whose aggregation came to a fresh worker.
from evalfleet.aggregator import analysis  # noqa: F401
from evalfleet.aggregator.aggregate import aggregate_run
from evalfleet.schema.db import session_scope
from evalfleet.schema.lifecycle import claim_aggregation
from evalfleet.schema.models import ItemState
from evalfleet.schema.payloads import AGGREGATE_RUN_TASK, ANSWER_ITEM_TASK, ANSWER_ITEMS_TASK
from evalfleet.schema.task_labels import aggregate_run_label, answer_item_labels
from evalfleet.workers.answering import RetryLater, answer_turns, finish_item, hand_back
from evalfleet.workers.app import app
from evalfleet.workers.delivery import Work, start_delivery
from evalfleet.workers.errors import Decision
from evalfleet.workers.resources import Resources, get_resources
from evalfleet.workers.retry_policy import RetryPolicy

logger = logging.getLogger(__name__)
# Fault injection for the poison-message test only: a worker handling this story dies.
KILL_ON_STORY = "EVALFLEET_FAULT_KILL_ON_STORY"


@dataclass(frozen=True)
class Again:
    """Deliver the item again after `countdown_s`, as a retry (`takeover`: the lease this
    delivery held is the retry's own)."""

    countdown_s: float
    takeover: bool = False


@app.task(name=ANSWER_ITEM_TASK, bind=True, max_retries=None)
def answer_item(self: Any, item_id: int, takeover: bool = False) -> None:
    again = deliver(get_resources(), item_id, int(self.request.retries), takeover)
    if again is not None:
        raise self.retry(countdown=again.countdown_s, kwargs={"takeover": again.takeover})


@app.task(name=ANSWER_ITEMS_TASK, bind=True)
def answer_items(self: Any, item_ids: list[int]) -> None:
    """Several short items in one message (producer/enqueue.py groups them): each delivered
    as answer_item would, one after the other, so the Celery message, its ack and the
    task's trace are paid once for all. One that must come back later comes back alone,
    as answer_item's first retry (docs/architecture.md, D1)."""
    resources = get_resources()
    for item_id in item_ids:
        again = deliver(resources, item_id, 0, False)
        if again is not None:
            with session_scope(resources.sessions) as session:
                label = answer_item_labels(session, None, [item_id]).get(item_id)
            app.send_task(
                ANSWER_ITEM_TASK,
                args=[item_id],
                kwargs={"takeover": again.takeover},
                countdown=again.countdown_s,
                retries=1,
                argsrepr=label,
            )


def deliver(resources: Resources, item_id: int, retries: int, takeover: bool) -> Again | None:
    """One delivery of one item: None when it is over (answered, failed for good, nothing
    to do), the run's aggregation enqueued if this was its last open item; else when and how
    to deliver it again."""
    holding = False
    may_be_last = True  # the close found no other open item of the run it could hold
    try:
        delivery = start_delivery(resources.sessions, item_id, resources.settings, takeover)
        if delivery.retry_in_s is not None:
            # A duplicate message while another delivery holds the item: come back after its
            # lease, and take over then if that delivery died.
            return Again(delivery.retry_in_s)
        if delivery.work is not None:
            holding = True
            die_if_poisoned(delivery.work)
            may_be_last = answer_turns(delivery.work, resources, attempt=retries + 1)
    except RetryLater as exc:
        again = retry_or_fail(resources, item_id, exc.decision, exc.reason, retries)
        if again is not None:
            return again
    except DBAPIError as exc:  # the database restarted or is unreachable: try again later
        logger.warning("item %s: database error, retrying: %s", item_id, type(exc).__name__)
        # The lease is still ours: the retry takes it over instead of waiting it out.
        return Again(RetryPolicy.task_delay(retries, Decision.TRANSIENT), takeover=holding)
    # Only when this close may be the run's last: else the closer of the open item that
    # this close held checks after it (lifecycle.close_each; docs/architecture.md, D3).
    if delivery.run_id is not None and may_be_last:
        enqueue_aggregation_if_last(resources, delivery.run_id)
    return None


def die_if_poisoned(work: Work) -> None:
    if os.environ.get(KILL_ON_STORY) == work.story_key:
        logger.error("item %s: fault injection: killing this worker process", work.item_id)
        os._exit(137)


def retry_or_fail(
    resources: Resources, item_id: int, decision: Decision, reason: str, retries: int
) -> Again | None:
    """Fail the item for good once retries run out; otherwise hand it back, to retry later."""
    if resources.retry_policy.task_retries_exhausted(retries):
        error = f"failed after {retries + 1} tries: {reason}"
        logger.error("item %s: %s", item_id, error)
        finish_item(resources.sessions, item_id, ItemState.FAILED, error)
        return None
    countdown = RetryPolicy.task_delay(retries, decision)
    logger.info(
        "item %s: %s, retry %s in %.1fs: %s", item_id, decision, retries + 1, countdown, reason
    )
    hand_back(resources.sessions, item_id, reason)
    return Again(countdown)


def enqueue_aggregation_if_last(resources: Resources, run_id: int) -> None:
    if claim_aggregation(resources.sessions, run_id):
        logger.info("run %s: last item done, aggregation enqueued", run_id)
        app.send_task(AGGREGATE_RUN_TASK, args=[run_id], argsrepr=aggregate_run_label(run_id))


@app.task(name=AGGREGATE_RUN_TASK, bind=True, max_retries=None)
def aggregate(self: Any, run_id: int) -> None:
    try:
        aggregate_run(get_resources().sessions, run_id)
    except DBAPIError as exc:
        raise self.retry(
            countdown=RetryPolicy.task_delay(int(self.request.retries), Decision.TRANSIENT)
        ) from exc
