"""Sending a batch's poll task: a fresh poller token per chain (schema/lifecycle.take_poll
lets one chain poll a batch at a time; a duplicate chain ends on its first poll)."""

from __future__ import annotations

import uuid
from typing import Any

from evalfleet.schema.payloads import POLL_BATCH_TASK


def poll_label(batch_id: int) -> str:
    """What Flower shows for the task."""
    return f"batch {batch_id}"


def send_poll(celery: Any, batch_id: int, countdown: float | None = None) -> None:
    celery.send_task(
        POLL_BATCH_TASK,
        args=[batch_id, uuid.uuid4().hex],
        argsrepr=poll_label(batch_id),
        countdown=countdown,
    )
