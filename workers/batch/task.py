"""The batch poll task: it re-schedules itself (same queue) until its batch has ended."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import DBAPIError

from evalfleet.schema.payloads import POLL_BATCH_TASK
from evalfleet.workers.app import app
from evalfleet.workers.batch.messages import poll_label, send_poll
from evalfleet.workers.batch.poll import poll_once
from evalfleet.workers.errors import Decision
from evalfleet.workers.resources import get_resources
from evalfleet.workers.retry_policy import RetryPolicy
from evalfleet.workers.tasks import enqueue_aggregation_if_last

logger = logging.getLogger(__name__)


@app.task(name=POLL_BATCH_TASK, bind=True, max_retries=None)
def poll_batch(self: Any, batch_id: int, token: str) -> None:
    resources = get_resources()
    try:
        polled = poll_once(resources, batch_id, token)
    except DBAPIError as exc:  # the database restarted or is unreachable: try again later
        logger.warning("batch %s: database error, retrying: %s", batch_id, type(exc).__name__)
        countdown = RetryPolicy.task_delay(int(self.request.retries), Decision.TRANSIENT)
        raise self.retry(countdown=countdown) from exc
    if polled.again_in_s is not None:
        # The same chain (token) again: it keeps its hold on the batch.
        app.send_task(
            POLL_BATCH_TASK, args=[batch_id, token], argsrepr=poll_label(batch_id),
            countdown=polled.again_in_s,
        )  # fmt: skip
    for new in polled.new_batches:
        send_poll(app, new)
    if polled.run_id is not None and polled.again_in_s is None:
        enqueue_aggregation_if_last(resources, polled.run_id)
