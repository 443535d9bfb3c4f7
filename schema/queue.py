"""The Celery app both sides use: the producer to send by task name, workers to run tasks."""

from __future__ import annotations

from typing import Any

from celery import Celery

from evalfleet.schema.settings import Settings


def make_celery(settings: Settings, broker_url: str, task_cls: Any = None) -> Celery:
    """Celery as docs/architecture.md, D4, says: late acks, no prefetch, results in SQL only.
    `task_cls`: the base class of the tasks the app defines (the workers' only)."""
    app = Celery("evalfleet", broker=broker_url, set_as_current=False, task_cls=task_cls)
    transport = {"visibility_timeout": settings.visibility_timeout_s}
    app.conf.update(
        task_default_queue=settings.queue,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A hard limit well under the visibility timeout, so a message is never redelivered
        # while its first delivery may still be running (enforced by the prefork pool).
        task_time_limit=settings.task_time_limit_s,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        task_ignore_result=True,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        # Flower's tasks page (schema/settings.py, task_events): off unless asked for.
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
        worker_hijack_root_logger=False,
    )
    return app
